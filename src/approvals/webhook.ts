// Tells someone that an approval is waiting: one JSON POST per new pending approval. Best effort:
// a slow or failing webhook never delays or changes the hold.
import type { Logger } from '../observability/log.js';
import type { Approval } from '../model/approval.js';

export function webhookNotifier(url: string, controlUrl: () => string, log: Logger): (approval: Approval) => void {
  return (approval) => {
    const body = JSON.stringify({
      event: 'approval.pending',
      approval,
      approve: `${controlUrl()}/v1/approvals/${approval.id}/approve`,
      deny: `${controlUrl()}/v1/approvals/${approval.id}/deny`,
    });
    fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body, signal: AbortSignal.timeout(5000) })
      .then((res) => {
        if (!res.ok) log.warn({ url, status: res.status, approvalId: approval.id }, 'approval webhook answered with an error');
      })
      .catch((err: unknown) => log.warn({ url, err: (err as Error).message, approvalId: approval.id }, 'approval webhook failed'));
  };
}
