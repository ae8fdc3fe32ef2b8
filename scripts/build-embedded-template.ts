/**
 * `npm install` (postinstall): prepares the embedded database the first `npm start` copies
 * (src/db/embedded-template.ts). Never fails the install: without a template, the first start
 * builds its database itself, only slower.
 */
import { buildEmbeddedTemplate } from '../src/db/embedded-template.js';

try {
  const file = await buildEmbeddedTemplate();
  console.log(`cas-runtime-api: embedded database template ready (${file})`);
} catch (error) {
  console.warn(
    `cas-runtime-api: no embedded database template (${error instanceof Error ? error.message : String(error)}); ` +
      'the first npm start builds its database itself',
  );
}
