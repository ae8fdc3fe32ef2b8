import { z } from 'zod';

/**
 * security.scan_secrets: finds credentials in text with rules for common formats plus a Shannon
 * entropy check on long tokens. Deterministic and model-free, so it runs with no provider.
 */

/** Characters of a match kept before the redaction mark: enough to recognise the kind of key. */
export const REDACT_KEEP_CHARS = 4;
/** Longest text (or file content) scanned: larger inputs are refused at enqueue. */
export const MAX_SCAN_CHARS = 1_000_000;
/** Most files in one scan. */
export const MAX_SCAN_FILES = 1000;
/** Most findings returned: a file full of keys is reported, not echoed in full. */
export const MAX_FINDINGS = 1000;
/** Tokens at least this long are checked for entropy. */
export const ENTROPY_MIN_LENGTH = 24;
/**
 * Bits per character above which a token counts as a secret. Random base64 of 24+ chars scores
 * about 4.2-5.5; hex (a git SHA, a sha256) at most 4.0, so hex digests stay below it.
 */
export const ENTROPY_THRESHOLD = 4.3;

export interface SecretRule {
  id: string;
  description: string;
  pattern: RegExp;
  /** Which capture group is the secret (0: the whole match). */
  group?: number;
}

/** Rules, most specific first: a span matched by one rule is not reported again by a later one. */
export const SECRET_RULES: readonly SecretRule[] = [
  {
    id: 'private-key',
    description: 'PEM private key block',
    pattern:
      /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/g,
  },
  {
    id: 'aws-access-key-id',
    description: 'AWS access key id',
    pattern: /\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b/g,
  },
  {
    id: 'aws-secret-access-key',
    description: 'AWS secret access key',
    pattern:
      /\baws_?(?:secret_?access_?key|secret_?key)\b["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])/gi,
    group: 1,
  },
  {
    id: 'gcp-api-key',
    description: 'Google Cloud API key',
    pattern: /\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/g,
  },
  {
    id: 'gcp-service-account',
    description: 'Google service account private key id',
    pattern: /"private_key_id"\s*:\s*"([a-f0-9]{40})"/g,
    group: 1,
  },
  {
    id: 'azure-storage-key',
    description: 'Azure storage account key',
    pattern: /\bAccountKey=([A-Za-z0-9+/]{86}==)/g,
    group: 1,
  },
  {
    id: 'azure-client-secret',
    description: 'Azure AD client secret',
    pattern: /\b[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])/g,
  },
  {
    id: 'github-token',
    description: 'GitHub token',
    pattern: /\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b/g,
  },
  {
    id: 'github-fine-grained-token',
    description: 'GitHub fine-grained token',
    pattern: /\bgithub_pat_[A-Za-z0-9_]{82}\b/g,
  },
  {
    id: 'gitlab-token',
    description: 'GitLab personal access token',
    pattern: /\bglpat-[A-Za-z0-9_-]{20}(?![A-Za-z0-9_-])/g,
  },
  { id: 'slack-token', description: 'Slack token', pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,72}\b/g },
  {
    id: 'slack-webhook',
    description: 'Slack incoming webhook',
    pattern: /https:\/\/hooks\.slack\.com\/services\/T[A-Z0-9]+\/B[A-Z0-9]+\/[A-Za-z0-9]{24}/g,
  },
  {
    id: 'stripe-key',
    description: 'Stripe secret or restricted key',
    pattern: /\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{24,99}\b/g,
  },
  {
    id: 'jwt',
    description: 'JSON Web Token',
    pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/g,
  },
  {
    id: 'database-url',
    description: 'database URL with a password',
    pattern:
      /\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|redis|rediss|amqps?|mssql|sqlserver):\/\/[^\s:/@'"]+:([^\s@/'"]+)@[^\s'"]+/gi,
    group: 1,
  },
  {
    id: 'generic-assignment',
    description: 'password or API key assigned a literal',
    pattern:
      /\b[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|client[_-]?secret)\b["']?\s*[:=]\s*["']?([^\s"',;`]{8,})/gi,
    group: 1,
  },
];

export interface SecretFinding {
  rule: string;
  description: string;
  /** The file's path, or null for `text` input. */
  path: string | null;
  /** 1-based. */
  line: number;
  /** 1-based, in UTF-16 code units. */
  column: number;
  /** The first REDACT_KEEP_CHARS characters of the secret, then "…" and its length. */
  redacted: string;
}

/** Shannon entropy in bits per character. */
export function shannonEntropy(value: string): number {
  if (value.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const char of value) counts.set(char, (counts.get(char) ?? 0) + 1);
  let bits = 0;
  for (const count of counts.values()) {
    const p = count / value.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

export function redact(secret: string): string {
  return `${secret.slice(0, REDACT_KEEP_CHARS)}…(${secret.length} chars)`;
}

/** Values that look random but are not secrets by themselves. */
const BENIGN_TOKENS: readonly RegExp[] = [
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, // UUID
  /^[0-9a-f]+$/i, // hex: git SHAs, digests
  /^[A-Za-z]+$/, // a long word
  /^[A-Za-z0-9_-]*[/.][A-Za-z0-9_./-]*$/, // paths and dotted names
];

/** A candidate token for the entropy check: base64/url-safe alphabets. */
const TOKEN = /[A-Za-z0-9+/_=-]{24,}/g;

function isHighEntropySecret(token: string): boolean {
  const trimmed = token.replace(/=+$/, '');
  if (trimmed.length < ENTROPY_MIN_LENGTH) return false;
  if (BENIGN_TOKENS.some((pattern) => pattern.test(trimmed))) return false;
  // A secret mixes classes; prose-like runs (camelCase identifiers) rarely have digits.
  if (!/\d/.test(trimmed) || !/[A-Za-z]/.test(trimmed)) return false;
  return shannonEntropy(trimmed) >= ENTROPY_THRESHOLD;
}

/** 1-based line and column of `offset` given the offsets where lines start. */
function position(lineStarts: readonly number[], offset: number): { line: number; column: number } {
  let low = 0;
  let high = lineStarts.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (lineStarts[middle]! <= offset) low = middle;
    else high = middle - 1;
  }
  return { line: low + 1, column: offset - lineStarts[low]! + 1 };
}

/** Findings in one text, in order of position. */
export function scanText(text: string, path: string | null = null): SecretFinding[] {
  const lineStarts = [0];
  for (let index = text.indexOf('\n'); index !== -1; index = text.indexOf('\n', index + 1)) {
    lineStarts.push(index + 1);
  }
  const claimed: Array<[number, number]> = [];
  const overlaps = (start: number, end: number) => claimed.some(([from, to]) => start < to && end > from);
  const found: Array<SecretFinding & { offset: number }> = [];
  const add = (rule: string, description: string, start: number, secret: string) => {
    found.push({
      rule,
      description,
      path,
      ...position(lineStarts, start),
      redacted: redact(secret),
      offset: start,
    });
  };

  for (const rule of SECRET_RULES) {
    for (const match of text.matchAll(rule.pattern)) {
      const group = rule.group ?? 0;
      const secret = match[group];
      if (secret === undefined) continue;
      const start = match.index + (group === 0 ? 0 : match[0].indexOf(secret));
      const whole: [number, number] = [match.index, match.index + match[0].length];
      if (overlaps(whole[0], whole[1])) continue;
      claimed.push(whole);
      add(rule.id, rule.description, start, secret);
    }
  }
  for (const match of text.matchAll(TOKEN)) {
    const end = match.index + match[0].length;
    if (overlaps(match.index, end) || !isHighEntropySecret(match[0])) continue;
    claimed.push([match.index, end]);
    add('high-entropy', 'high-entropy token', match.index, match[0]);
  }
  return found.sort((a, b) => a.offset - b.offset).map(({ offset: _offset, ...finding }) => finding);
}

export const scanSecretsInput = z.union([
  z.strictObject({ text: z.string().max(MAX_SCAN_CHARS) }),
  z.strictObject({
    files: z
      .array(z.strictObject({ path: z.string().min(1).max(1000), content: z.string().max(MAX_SCAN_CHARS) }))
      .min(1)
      .max(MAX_SCAN_FILES),
  }),
]);
export type ScanSecretsInput = z.output<typeof scanSecretsInput>;

export const scanSecretsOutput = z.object({
  findings: z.array(
    z.object({
      rule: z.string(),
      description: z.string(),
      path: z.string().nullable(),
      line: z.number().int(),
      column: z.number().int(),
      redacted: z.string(),
    }),
  ),
  /** True when more than MAX_FINDINGS were found and the list was cut. */
  truncated: z.boolean(),
  scannedFiles: z.number().int(),
});
export type ScanSecretsOutput = z.output<typeof scanSecretsOutput>;

export function scanSecrets(input: ScanSecretsInput): ScanSecretsOutput {
  const sources = 'text' in input ? [{ path: null, content: input.text }] : input.files;
  const findings = sources.flatMap((source) => scanText(source.content, source.path));
  return {
    findings: findings.slice(0, MAX_FINDINGS),
    truncated: findings.length > MAX_FINDINGS,
    scannedFiles: sources.length,
  };
}
