/**
 * security.scan_secrets: a table of credentials it must find (rule, line, column, redaction) and of
 * look-alikes it must leave alone. Fake keys are assembled at run time so this file itself holds
 * no string a secret scanner (ours or a host's) would flag.
 */
import { describe, expect, it } from 'vitest';
import {
  REDACT_KEEP_CHARS,
  scanSecrets,
  scanText,
  shannonEntropy,
} from '../../src/agents/skills/scan-secrets.js';

/** A deterministic pseudo-random string over `alphabet` (seeded: the table never changes). */
function randomish(length: number, alphabet: string, seed = 7): string {
  let state = seed;
  let out = '';
  for (let index = 0; index < length; index += 1) {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    out += alphabet[(state >> 8) % alphabet.length];
  }
  return out;
}
const UPPER_DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const B64 = `${ALNUM}+/`;
const join = (...parts: string[]) => parts.join('');

const positives: Array<{ name: string; text: string; rule: string; secretStart: string }> = [
  {
    name: 'AWS access key id',
    text: `key = ${join('AKIA', randomish(16, UPPER_DIGITS))}`,
    rule: 'aws-access-key-id',
    secretStart: 'AKIA',
  },
  {
    name: 'AWS secret access key',
    text: `aws_secret_access_key = ${join('wJal', randomish(36, B64, 3))}`,
    rule: 'aws-secret-access-key',
    secretStart: 'wJal',
  },
  {
    name: 'GCP API key',
    text: `"${join('AIza', randomish(35, ALNUM, 11))}"`,
    rule: 'gcp-api-key',
    secretStart: 'AIza',
  },
  {
    name: 'Azure storage key',
    text: `DefaultEndpointsProtocol=https;AccountName=x;AccountKey=${randomish(86, B64, 5)}==;`,
    rule: 'azure-storage-key',
    secretStart: '',
  },
  {
    name: 'GitHub token',
    text: `token: ${join('ghp', '_', randomish(36, ALNUM, 13))}`,
    rule: 'github-token',
    secretStart: 'ghp_',
  },
  {
    name: 'GitLab token',
    text: `GITLAB=${join('glpat', '-', randomish(20, ALNUM, 17))}`,
    rule: 'gitlab-token',
    secretStart: 'glpa',
  },
  {
    name: 'Slack token',
    text: `slack ${join('xoxb', '-', '1234567890', '-', randomish(24, ALNUM, 19))}`,
    rule: 'slack-token',
    secretStart: 'xoxb',
  },
  {
    name: 'Stripe key',
    text: `stripe(${join('sk', '_live_', randomish(24, ALNUM, 23))})`,
    rule: 'stripe-key',
    secretStart: 'sk_l',
  },
  {
    name: 'private key PEM',
    text: join(
      '-----BEGIN RSA ',
      'PRIVATE KEY-----\n',
      randomish(64, B64, 29),
      '\n-----END RSA ',
      'PRIVATE KEY-----',
    ),
    rule: 'private-key',
    secretStart: '----',
  },
  {
    name: 'JWT',
    text: `Authorization: Bearer ${join('eyJhbGciOiJIUzI1NiJ9', '.', 'eyJzdWIiOiIxMjM0NTY3ODkwIn0', '.', randomish(43, ALNUM, 31))}`,
    rule: 'jwt',
    secretStart: 'eyJh',
  },
  {
    name: 'database URL',
    text: 'DATABASE_URL=postgres://app:' + 'hunter2pass' + '@db.example.com:5432/app',
    rule: 'database-url',
    secretStart: 'hunt',
  },
  {
    name: 'password assignment',
    text: `const password = "${'correct-horse-battery'}";`,
    rule: 'generic-assignment',
    secretStart: 'corr',
  },
  {
    name: 'api_key assignment',
    text: `API_KEY=${'abc123def456ghi'}`,
    rule: 'generic-assignment',
    secretStart: 'abc1',
  },
  {
    name: 'high-entropy token',
    text: `token ${randomish(40, ALNUM, 37)}`,
    rule: 'high-entropy',
    secretStart: '',
  },
];

const negatives: Array<{ name: string; text: string }> = [
  { name: 'UUID', text: 'id: 3f2b8c1e-9d4a-4b7e-8f21-6c0a5e9d7b13' },
  { name: 'git SHA', text: 'commit 3d867c4a9e1f0b2c7d8e9f00112233445566aabb' },
  { name: 'sha256 hex', text: 'sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
  {
    name: 'low-entropy base64 image fragment',
    text: 'data:image/png;base64,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==',
  },
  { name: 'prose', text: 'The password must be set by the operator; see the configuration guide.' },
  { name: 'password placeholder too short', text: 'password = x' },
  { name: 'a path', text: 'import x from "../../node_modules/some-package/dist/index.js"' },
  { name: 'long identifier', text: 'function createSubscriptionForTaskOutputStream() {}' },
  { name: 'database URL without password', text: 'postgres://postgres@127.0.0.1:5432/test' },
];

describe('security.scan_secrets', () => {
  it.each(positives)('finds a $name', ({ text, rule, secretStart }) => {
    const findings = scanText(`first line\n  ${text}\n`, 'config/app.env');
    expect(findings.map((finding) => finding.rule)).toContain(rule);
    const finding = findings.find((candidate) => candidate.rule === rule)!;
    expect(finding.path).toBe('config/app.env');
    expect(finding.line).toBe(2);
    expect(finding.column).toBeGreaterThan(2);
    expect(finding.redacted).toMatch(/…\(\d+ chars\)$/);
    expect(finding.redacted.length).toBeLessThan(REDACT_KEEP_CHARS + 16);
    if (secretStart) expect(finding.redacted.startsWith(secretStart)).toBe(true);
  });

  it.each(negatives)('leaves alone $name', ({ text }) => {
    expect(scanText(text)).toEqual([]);
  });

  it('reports the exact column of the secret, and one finding per secret', () => {
    const key = join('AKIA', randomish(16, UPPER_DIGITS, 41));
    const [finding, ...rest] = scanText(`a\nbb\nkey ${key} tail`);
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({ rule: 'aws-access-key-id', line: 3, column: 5, path: null });
  });

  it('scans files, each with its own path', () => {
    const result = scanSecrets({
      files: [
        { path: 'a.txt', content: 'nothing here' },
        { path: 'b.env', content: `\n\nGITHUB_TOKEN=${join('ghp', '_', randomish(36, ALNUM, 43))}` },
      ],
    });
    expect(result.scannedFiles).toBe(2);
    expect(result.truncated).toBe(false);
    expect(result.findings).toHaveLength(1);
    expect(result.findings[0]).toMatchObject({ path: 'b.env', line: 3, rule: 'github-token' });
  });

  it('scores entropy: random base64 above hex digests', () => {
    expect(shannonEntropy('aaaa')).toBe(0);
    expect(shannonEntropy(randomish(40, ALNUM))).toBeGreaterThan(4.3);
    expect(shannonEntropy('e3b0c44298fc1c149afbf4c8996fb92427ae41e4')).toBeLessThan(4.3);
  });
});

describe('percentile (analyst.analyze_metrics)', () => {
  it('is the nearest rank', async () => {
    const { percentile } = await import('../../src/agents/skills/analyze-metrics.js');
    expect(percentile([], 50)).toBeNull();
    expect(percentile([5], 95)).toBe(5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50)).toBe(5);
    expect(percentile([10, 1, 9, 2, 8, 3, 7, 4, 6, 5], 95)).toBe(10);
  });
});
