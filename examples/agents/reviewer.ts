/**
 * Example agent `reviewer`: reviews a draft and returns a verdict. Called by `writer.publish` with
 * ctx.call; also runnable on its own:
 *
 *   mutation { executeTask(input: { agentId: "reviewer", action: "review",
 *     input: { title: "Hello", body: "A first post." }, wait: true }) { status result } }
 *
 * Run it: CAS_AGENTS_DIR=examples/agents npm start (or copy this file into agents/). docs/agents.md.
 */
import { defineAction, defineAgent, z } from 'cas-runtime-api/sdk';

/** Drafts shorter than this are sent back. */
const MIN_BODY_CHARS = 20;

export default defineAgent({
  id: 'reviewer',
  name: 'Reviewer',
  role: 'qa',
  description: 'Reviews drafts before they are published.',
  actions: {
    review: defineAction({
      description: 'Reviews a draft: approves it, or lists what to change.',
      input: z.object({
        title: z.string().min(1).max(200),
        body: z.string().max(100_000),
      }),
      output: z.object({
        approved: z.boolean(),
        comments: z.array(z.string()),
      }),
      run: async ({ title, body }, ctx) => {
        ctx.log('info', 'reviewing', { title });
        const comments: string[] = [];
        if (body.length < MIN_BODY_CHARS)
          comments.push(`the body is shorter than ${MIN_BODY_CHARS} characters`);
        if (title !== title.trim()) comments.push('the title has leading or trailing spaces');
        ctx.progress(1, 'reviewed');
        return { approved: comments.length === 0, comments };
      },
    }),
  },
});
