// `kube-bastion record ID` (= `approvals record ID`): the review record as text, the five answers
// first, then the evidence behind each. `-o json` prints the API's document as it is.
import type { ReviewConnection, ReviewRecord } from '../model/review-record-schema.js';

const time = (iso: string | null): string => (iso === null ? '-' : iso.replace(/\.\d+Z$/, 'Z'));

function section(title: string, lines: string[]): string {
  return `${title}\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
}

/** One forwarded connection of a port-forward session: port, times, outcome, bytes, protocol, hashes, and why it was in or out. */
function connectionLine(c: ReviewConnection): string {
  const hashes = c.sha256In !== null || c.sha256Out !== null ? `  sha256 in ${c.sha256In?.slice(0, 12) ?? '-'} out ${c.sha256Out?.slice(0, 12) ?? '-'}` : '';
  return (
    `connection ${c.seq} port ${c.port}  ${time(c.startedAt)} .. ${time(c.endedAt)}  ${c.outcome ?? 'open'}  in ${c.bytesIn} B / out ${c.bytesOut} B` +
    `${c.protocol ? `  ${c.protocol}` : ''}${hashes}\n        ${c.inScope ? 'in ' : 'OUT'} ${c.why}`
  );
}

export function formatRecord(r: ReviewRecord): string {
  const a = r.answers;
  const parts = [
    `Review record of approval ${r.approvalId} (generated ${time(r.generatedAt)})\n`,
    section('1. Who acted', [a.who]),
    section('2. Was approval needed, and which rule decided', [a.approvalNeeded, ...(r.policy.ruleText ? ['rule as written:', ...r.policy.ruleText.split('\n').map((l) => `  ${l}`)] : [])]),
    section('3. Who decided, when and why', [
      a.approvedBy,
      ...r.decisions.map((d) => `${time(d.at)}  ${d.event.padEnd(24)} ${d.actor ?? '-'}${d.reason ? `  reason: ${d.reason}` : ''}`),
    ]),
    section('4. The scope, and whether everything stayed inside it', [
      a.scopeKept,
      `window: ${time(r.scope.window.from)} .. ${time(r.scope.window.until)}  verdict: ${r.conformance.verdict}`,
      ...r.conformance.attempts.map(
        (t) =>
          `${time(t.at)}  ${t.inScope ? 'in ' : 'OUT'} ${t.refused ? 'refused' : 'ran    '} ${t.source ?? '-'}  ${t.stream ?? t.method ?? '-'} ${t.command ? JSON.stringify(t.command) : (t.path ?? '')}\n      ${t.why}`,
      ),
    ]),
    section('5. What happened', [
      a.happened,
      ...r.sessions.map(
        (s) =>
          `${s.id}  ${s.operation ?? '-'}${s.connections !== null ? '' : ` ${JSON.stringify(s.command)}`} from ${s.client ?? '-'}  ${time(s.startedAt)} .. ${time(s.endedAt)}  ${s.endReason ?? 'open'}` +
          `  in ${s.bytesIn ?? '-'} B / out ${s.bytesOut ?? '-'} B${s.recording ? `  recording ${s.recording}` : ''}` +
          (s.files && s.files.length > 0 ? `\n      files: ${s.files.map((f) => `${f.name} (${f.size} B, sha256 ${f.sha256.slice(0, 12)})`).join(', ')}` : '') +
          (s.connections ?? []).map((c) => `\n      ${connectionLine(c)}`).join(''),
      ),
    ]),
  ];
  return parts.join('\n');
}
