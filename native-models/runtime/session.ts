/**
 * ONNX Runtime sessions: execution-provider choice with automatic fallback to the CPU,
 * thread settings, and a cache that owns sessions until they are disposed.
 *
 * @example
 * const runtime = new Runtime({ executionProvider: 'auto', intraOpNumThreads: 2 });
 * const unet = await runtime.session('/models/sd15/unet/model.onnx');
 * console.log(unet.executionProvider); // 'cpu' here, 'cuda' on a machine with the CUDA provider
 * const out = await unet.run({ sample, timestep, encoder_hidden_states });
 * await runtime.dispose();
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, platform, arch } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';

export type ExecutionProviderName = 'cpu' | 'cuda' | 'dml' | 'coreml';
export type ExecutionProviderChoice = ExecutionProviderName | 'auto';

export const EXECUTION_PROVIDER_CHOICES: readonly ExecutionProviderChoice[] = [
  'auto',
  'cpu',
  'cuda',
  'dml',
  'coreml',
];

export interface RuntimeOptions {
  /** 'auto' picks the platform's GPU provider when onnxruntime has it, else the CPU. */
  executionProvider?: ExecutionProviderChoice;
  /** Threads inside one operator; defaults to the machine's available parallelism. */
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
}

export type Feeds = Record<string, ort.Tensor>;

/** One loaded model and the provider it runs on. */
export class ModelSession {
  constructor(
    readonly key: string,
    readonly session: ort.InferenceSession,
    readonly executionProvider: ExecutionProviderName,
    /** Why a requested GPU provider was not used, when the session fell back to the CPU. */
    readonly fallbackReason: string | undefined,
  ) {}

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  async run(feeds: Feeds, outputNames?: readonly string[]): Promise<Record<string, ort.Tensor>> {
    return outputNames ? this.session.run(feeds, outputNames) : this.session.run(feeds);
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/** GPU providers worth trying on this platform, in order of preference. */
export function platformGpuProviders(os: string = platform(), cpu: string = arch()): ExecutionProviderName[] {
  if (os === 'win32') return ['dml'];
  if (os === 'darwin') return ['coreml'];
  if (os === 'linux' && cpu === 'x64') return ['cuda'];
  return [];
}

/** Providers compiled into this onnxruntime-node build (not all are usable: CUDA needs its libraries). */
export function compiledProviders(): Set<string> {
  return new Set(ort.listSupportedBackends().map((b) => b.name));
}

/**
 * Why a provider cannot work here, found without creating a session (which would make
 * onnxruntime print errors): the CUDA provider is a separate library that onnxruntime-node
 * downloads at install time only when asked to (`onnxruntime-node-install=cuda12` in .npmrc).
 */
export function providerUnavailableReason(provider: ExecutionProviderName): string | undefined {
  if (provider !== 'cuda') return undefined;
  const binDir = bindingDirectory();
  if (binDir === undefined) return undefined;
  const hasCuda = readdirSync(binDir).some((f) => f.startsWith('libonnxruntime_providers_cuda'));
  return hasCuda
    ? undefined
    : 'cuda unavailable (the CUDA provider library is not installed; reinstall onnxruntime-node with onnxruntime-node-install=cuda12)';
}

function bindingDirectory(): string | undefined {
  try {
    const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
    const root = join(dirname(entry), '..', 'bin');
    for (const napi of existsSync(root) ? readdirSync(root) : []) {
      const dir = join(root, napi, platform(), arch());
      if (existsSync(dir)) return dir;
    }
  } catch {
    // not resolvable (bundled app): let session creation decide
  }
  return undefined;
}

export class SessionError extends Error {
  override name = 'SessionError';
}

/** Creates sessions with one provider policy and caches them by key until disposed. */
export class Runtime {
  readonly options: Required<RuntimeOptions>;
  private readonly cache = new Map<string, Promise<ModelSession>>();
  /** Providers that failed once in this process are not tried again. */
  private readonly failedProviders = new Map<ExecutionProviderName, string>();

  constructor(options: RuntimeOptions = {}) {
    this.options = {
      executionProvider: options.executionProvider ?? 'auto',
      intraOpNumThreads: options.intraOpNumThreads ?? Math.max(1, availableParallelism()),
      interOpNumThreads: options.interOpNumThreads ?? 1,
      graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    };
    if (!EXECUTION_PROVIDER_CHOICES.includes(this.options.executionProvider)) {
      throw new SessionError(
        `unknown execution provider "${String(this.options.executionProvider)}"; expected one of ${EXECUTION_PROVIDER_CHOICES.join(', ')}`,
      );
    }
  }

  /** Providers to try, best first; the CPU is always last. */
  candidateProviders(): ExecutionProviderName[] {
    const choice = this.options.executionProvider;
    const wanted = choice === 'auto' ? platformGpuProviders() : choice === 'cpu' ? [] : [choice];
    const compiled = compiledProviders();
    return [...wanted.filter((p) => compiled.has(p) || choice !== 'auto'), 'cpu'];
  }

  /**
   * The session for a model file (or in-memory model bytes under `key`), created on first use.
   * Falls back to the CPU when a GPU provider cannot be initialized, and records why.
   */
  session(model: string | Uint8Array, key?: string): Promise<ModelSession> {
    const cacheKey = key ?? (typeof model === 'string' ? model : undefined);
    if (cacheKey === undefined) throw new SessionError('a cache key is required for in-memory models');
    let pending = this.cache.get(cacheKey);
    if (!pending) {
      pending = this.create(model, cacheKey);
      this.cache.set(cacheKey, pending);
      pending.catch(() => this.cache.delete(cacheKey));
    }
    return pending;
  }

  private async create(model: string | Uint8Array, key: string): Promise<ModelSession> {
    const reasons: string[] = [];
    for (const provider of this.candidateProviders()) {
      const failed = this.failedProviders.get(provider) ?? providerUnavailableReason(provider);
      if (failed) {
        reasons.push(failed);
        continue;
      }
      try {
        const options: ort.InferenceSession.SessionOptions = {
          executionProviders: [provider],
          intraOpNumThreads: this.options.intraOpNumThreads,
          interOpNumThreads: this.options.interOpNumThreads,
          graphOptimizationLevel: this.options.graphOptimizationLevel,
          executionMode: 'sequential',
          // a GPU provider that fails to load is reported through fallbackReason, not the console
          ...(provider === 'cpu' ? {} : { logSeverityLevel: 4 as const }),
        };
        const session =
          typeof model === 'string'
            ? await ort.InferenceSession.create(model, options)
            : await ort.InferenceSession.create(model, options);
        return new ModelSession(key, session, provider, reasons.length ? reasons.join('; ') : undefined);
      } catch (e) {
        const message = firstLine((e as Error).message);
        if (provider === 'cpu')
          throw new SessionError(`${describe(key)}: onnxruntime cannot load the model: ${message}`);
        const reason = `${provider} unavailable (${message})`;
        this.failedProviders.set(provider, reason);
        reasons.push(reason);
      }
    }
    throw new SessionError(`${describe(key)}: no execution provider could load the model`);
  }

  /** Releases one cached session. */
  async release(key: string): Promise<void> {
    const pending = this.cache.get(key);
    this.cache.delete(key);
    if (pending) await (await pending.catch(() => undefined))?.dispose();
  }

  /** Releases every cached session. */
  async dispose(): Promise<void> {
    const all = [...this.cache.keys()];
    await Promise.all(all.map((k) => this.release(k)));
  }
}

function firstLine(message: string): string {
  return message.split('\n')[0].slice(0, 300);
}

function describe(key: string): string {
  return key;
}
