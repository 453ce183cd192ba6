// The active policy version, replaced when the file changes or on reload() (SIGHUP). Fail safe: a
// version that does not validate is rejected and the previous one stays active; there is never a
// moment without a validated policy, and never a fallback to "allow everything".
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { BastionError, ErrorCode, isBastionError } from '../errors/index.js';
import { loadPolicy } from './load.js';
import type { LoadedPolicy } from './schema.js';

export interface PolicyHolderOptions {
  /** The policy file; without one, the built-in default policy (nothing to watch or reload). */
  path?: string;
  /** Watch the file's directory for changes (default true when there is a path). */
  watch?: boolean;
  /** Quiet period after the last change event before the file is re-read (default 200 ms). */
  debounceMs?: number;
}

export type ReloadResult =
  | { status: 'loaded'; policy: LoadedPolicy; previous: LoadedPolicy }
  | { status: 'unchanged'; policy: LoadedPolicy }
  | { status: 'rejected'; policy: LoadedPolicy; error: BastionError };

export interface PolicyHolderEvents {
  /** A new version (different hash) is active. Not emitted for the initial version: read `current`. */
  loaded: [policy: LoadedPolicy, previous: LoadedPolicy];
  /** A new version was rejected (the previous stays active), or watching failed. */
  error: [error: BastionError];
}

export class PolicyHolder extends EventEmitter<PolicyHolderEvents> {
  private active: LoadedPolicy;
  private readonly path: string | undefined;
  private readonly debounceMs: number;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The last failed read seen by the watcher, to confirm it before reporting and to report it once. */
  private failure: { fingerprint: string; reported: boolean } | undefined;

  /** Loads the policy now; throws BastionError(CONFIG_INVALID) if it is invalid (startup fails). */
  constructor(options: PolicyHolderOptions = {}) {
    super();
    this.path = options.path;
    this.debounceMs = options.debounceMs ?? 200;
    this.active = loadPolicy(this.path === undefined ? {} : { path: this.path });
    if (this.path !== undefined && options.watch !== false) this.startWatching(this.path);
  }

  /** The active policy version. */
  get current(): LoadedPolicy {
    return this.active;
  }

  /** The file being followed, or undefined for the built-in policy. */
  get file(): string | undefined {
    return this.path;
  }

  /**
   * Re-read the file now (the CLI calls this on SIGHUP). A valid version with a new hash becomes
   * active and 'loaded' is emitted; an invalid one is rejected ('error' is emitted when anyone
   * listens) and the active version stays. Never throws for a bad file.
   */
  reload(): ReloadResult {
    const attempt = this.attempt();
    if (attempt.status === 'rejected') this.report(attempt.error);
    return attempt;
  }

  /** Read and validate the file; switch to it if it is valid and new. Reports nothing. */
  private attempt(): ReloadResult {
    if (this.path === undefined) return { status: 'unchanged', policy: this.active };
    let next: LoadedPolicy;
    try {
      next = loadPolicy({ path: this.path });
    } catch (err) {
      const error = isBastionError(err)
        ? err
        : new BastionError(ErrorCode.CONFIG_INVALID, `policy ${this.path}: ${(err as Error).message}`, { origin: this.path }, { cause: err });
      const rejected = new BastionError(error.code, `${error.message}\nthe previous policy (sha256 ${this.active.hash}) stays active`, { ...error.details, activeHash: this.active.hash }, { cause: error });
      return { status: 'rejected', policy: this.active, error: rejected };
    }
    this.failure = undefined;
    if (next.hash === this.active.hash) return { status: 'unchanged', policy: this.active };
    const previous = this.active;
    this.active = next;
    this.emit('loaded', next, previous);
    return { status: 'loaded', policy: next, previous };
  }

  /** Stop watching. The active version stays readable. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
  }

  private report(error: BastionError): void {
    // An 'error' event without a listener would throw; a rejected version must never crash the bastion.
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  private startWatching(path: string): void {
    // Watch the directory, not the file: editors and config tools replace the file (write a temporary
    // file, rename it over; Kubernetes ConfigMap volumes swap a `..data` symlink), which a watch on the
    // file itself would lose. Every event in the directory schedules a re-read; an unchanged hash is
    // ignored, so unrelated files only cost a read.
    const dir = dirname(path);
    try {
      this.watcher = watch(dir, { persistent: false }, () => this.schedule());
    } catch (err) {
      throw new BastionError(ErrorCode.CONFIG_INVALID, `cannot watch ${dir} for policy changes: ${(err as Error).message}`, { origin: path }, { cause: err });
    }
    this.watcher.on('error', (err) => {
      this.watcher?.close();
      this.watcher = undefined;
      this.report(new BastionError(ErrorCode.CONFIG_INVALID, `stopped watching ${dir} for changes to ${basename(path)}: ${err.message}; reload with SIGHUP`, { origin: path }, { cause: err }));
    });
  }

  private schedule(delay = this.debounceMs): void {
    if (this.closed) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closed) this.onChange();
    }, delay);
    this.timer.unref();
  }

  /**
   * A change seen by the watcher. A file caught mid-write (truncated, or briefly missing while an
   * editor swaps it) fails validation, so a failure is only reported when a second read, one quiet
   * period later, fails the same way; and the same failure is reported once, not on every event.
   */
  private onChange(): void {
    let result: ReloadResult;
    try {
      result = this.attempt();
    } catch (err) {
      // A 'loaded' listener threw (e.g. the store could not record the version): report, keep going.
      this.report(new BastionError(ErrorCode.INTERNAL, `after loading policy ${this.path ?? ''}: ${(err as Error).message}`, undefined, { cause: err }));
      return;
    }
    if (result.status !== 'rejected') return;
    const fingerprint = result.error.message;
    if (this.failure?.fingerprint !== fingerprint) {
      this.failure = { fingerprint, reported: false };
      this.schedule();
    } else if (!this.failure.reported) {
      this.failure.reported = true;
      this.report(result.error);
    }
  }
}
