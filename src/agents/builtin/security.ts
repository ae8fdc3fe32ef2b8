import { defineAction, type ActionMap } from '../actions.js';
import { threatModelAction } from './model-actions.js';
import { scanSecrets, scanSecretsInput, scanSecretsOutput } from '../skills/scan-secrets.js';

export const securityActions: ActionMap = {
  scan_secrets: defineAction({
    description:
      'Finds credentials in `text` or `files` ([{ path, content }]): rules for cloud keys, tokens, private keys, ' +
      'JWTs, database URLs with passwords and password/api_key assignments, plus an entropy check. ' +
      'Findings carry rule, path, line, column and a redacted match. Deterministic: needs no model provider.',
    input: scanSecretsInput,
    output: scanSecretsOutput,
    run: (input) => scanSecrets(input),
  }),
  threat_model: threatModelAction,
};
