/**
 * The child process `buildEmbeddedTemplateInChild` starts (src/db/embedded-template.ts): builds the
 * template for this code into the folder named by its argument, sends its path to the parent
 * (`EmbeddedTemplateBuilt`) and exits, 0 when done. Exits if its parent dies first (the IPC
 * channel closes), once its event loop turns: PGlite's WebAssembly blocks it for seconds at a time.
 */
import { buildEmbeddedTemplate, type EmbeddedTemplateBuilt } from './embedded-template.js';

process.on('disconnect', () => process.exit(1));
// The channel only tells of the parent's death: it must not keep this process alive.
process.channel?.unref();

try {
  const message: EmbeddedTemplateBuilt = { template: await buildEmbeddedTemplate(process.argv[2]) };
  // Exits once the parent has the message (the path it copies).
  process.send!(message, () => process.exit(0));
} catch (error) {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}
