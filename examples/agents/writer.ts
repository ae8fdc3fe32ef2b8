/**
 * Example agent `writer`: its action `publish` shows the durable API end to end.
 *
 * 1. ctx.step('draft'): writes the draft once; on every replay the stored draft comes back.
 * 2. ctx.call('reviewer', 'review', draft): the reviewer runs as a child task; this task WAITs
 *    (holding no worker slot) and resumes with the review.
 * 3. ctx.waitForSignal('approval', { timeoutMs }): a person approves with
 *      mutation { signalTask(id: "<task id>", name: "approval", payload: { approved: true }) { status } }
 *    and the task resumes with that payload (a SignalTimeout after timeoutMs).
 * 4. ctx.step('publish'): the side effect, once.
 *
 * Code outside the steps runs again on each replay, so it only computes; side effects are steps.
 * Run it: CAS_AGENTS_DIR=examples/agents npm start (or copy both files into agents/). docs/agents.md.
 */
import { defineAction, defineAgent, TaskFailure, z } from 'cas-runtime-api/sdk';

/** How long a person has to approve a reviewed draft. */
const APPROVAL_TIMEOUT_MS = 24 * 60 * 60 * 1000;

const review = z.object({ approved: z.boolean(), comments: z.array(z.string()) });
const approval = z.object({ approved: z.boolean(), note: z.string().optional() });

export default defineAgent({
  id: 'writer',
  name: 'Writer',
  role: 'marketer',
  description: 'Drafts a post, has it reviewed, waits for a person to approve, then publishes it.',
  actions: {
    publish: defineAction({
      description:
        'Drafts a post on a topic, asks the reviewer, waits for the "approval" signal, then publishes.',
      input: z.object({
        topic: z.string().min(1).max(200),
        approvalTimeoutMs: z.number().int().min(1).max(APPROVAL_TIMEOUT_MS).default(APPROVAL_TIMEOUT_MS),
      }),
      output: z.object({
        published: z.boolean(),
        title: z.string(),
        url: z.string().nullable(),
        comments: z.array(z.string()),
      }),
      run: async ({ topic, approvalTimeoutMs }, ctx) => {
        const draft = await ctx.step('draft', () => {
          ctx.progress(0.1, 'drafting');
          return { title: `On ${topic}`, body: `Some thoughts on ${topic}, written by the writer agent.` };
        });

        const verdict = review.parse(await ctx.call('reviewer', 'review', draft));
        if (!verdict.approved) {
          return { published: false, title: draft.title, url: null, comments: verdict.comments };
        }

        ctx.progress(0.5, 'waiting for approval');
        const decision = approval.safeParse(
          await ctx.waitForSignal('approval', { timeoutMs: approvalTimeoutMs }),
        );
        if (!decision.success) {
          throw new TaskFailure(
            'the approval signal needs a payload { approved: boolean }',
            'BAD_APPROVAL',
            false,
          );
        }
        if (!decision.data.approved) {
          const comments = decision.data.note ? [decision.data.note] : [];
          return { published: false, title: draft.title, url: null, comments };
        }

        const url = await ctx.step('publish', () => {
          // A real agent posts the draft here; a step runs once even if the task is replayed.
          ctx.log('info', 'published', { title: draft.title });
          return `https://example.com/posts/${encodeURIComponent(draft.title.toLowerCase().replace(/\s+/g, '-'))}`;
        });
        ctx.progress(1, 'published');
        return { published: true, title: draft.title, url, comments: verdict.comments };
      },
    }),
  },
});
