/**
 * Runs before every test file (vitest `setupFiles`): once the file's tests and its own `afterAll`
 * hooks are done, every child process the file started and did not stop is killed, with all it
 * started; this covers tests that failed or timed out before their clean-up ran.
 */
import { afterAll } from 'vitest';
import { killAllChildren } from './child-processes.js';

afterAll(killAllChildren);
