// Validation problems in a policy file, and how they are shown: `file:line:col: path: message`
// followed by the offending source line and a caret, as compilers do.

export interface PolicyIssue {
  /** The file as the operator named it, or `built-in`. */
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly col: number;
  /** Where in the document, e.g. `rules[3].match.verbs[1]`; '' for syntax errors and the top level. */
  readonly path: string;
  readonly message: string;
}

/** `policy.yaml:12:5: rules[3].match.verbs[1]: unknown verb "lst" (...)` */
export function issueHeadline(issue: PolicyIssue): string {
  return `${issue.file}:${issue.line}:${issue.col}: ${issue.path === '' ? '' : `${issue.path}: `}${issue.message}`;
}

/** The source line of an issue with a caret under the column, indented for a terminal. */
export function issueExcerpt(issue: PolicyIssue, text: string): string {
  const lines = text.split(/\r?\n|\r/);
  const source = lines[issue.line - 1];
  if (source === undefined) return '';
  const gutter = String(issue.line).length;
  // Keep tabs so the caret lines up under tab-indented text.
  const pad = source.slice(0, Math.max(0, issue.col - 1)).replace(/[^\t]/g, ' ');
  return `  ${String(issue.line)} | ${source}\n  ${' '.repeat(gutter)} | ${pad}^`;
}

/** All issues, each with its excerpt: the message of the CONFIG_INVALID error. */
export function formatIssues(issues: readonly PolicyIssue[], text: string): string {
  return issues
    .map((issue) => {
      const excerpt = issueExcerpt(issue, text);
      return excerpt === '' ? issueHeadline(issue) : `${issueHeadline(issue)}\n${excerpt}`;
    })
    .join('\n');
}

/** The closest candidate within a small edit distance, for "did you mean" hints. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const prefix = candidates.find((c) => c.length >= 4 && (lower.startsWith(c.toLowerCase()) || c.toLowerCase().startsWith(lower)) && lower.length >= 4);
  if (prefix !== undefined) return prefix;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
