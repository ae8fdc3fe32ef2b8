/**
 * `npm install` (postinstall): prepares the embedded database the first `npm start` copies
 * (src/db/embedded-template.ts). Never fails the install: without a template, the first start
 * builds it then, in a child process, only slower.
 */
import { buildEmbeddedTemplate } from '../src/db/embedded-template.js';

try {
  // A fresh install: the templates of other code go.
  const file = await buildEmbeddedTemplate(undefined, { removeOthers: true });
  console.log(`cas-runtime-api: embedded database template ready (${file})`);
} catch (error) {
  console.warn(
    `cas-runtime-api: no embedded database template (${error instanceof Error ? error.message : String(error)}); ` +
      'the first npm start builds it',
  );
}
