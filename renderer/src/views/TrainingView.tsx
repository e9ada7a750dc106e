/**
 * The Training place: teach a cast to the model. On the left the cast (its subjects and pictures)
 * and the settings; in the middle Start / Cancel / Resume, the progress bar with the phase, the loss
 * curve, the sample pictures as they arrive, what the training trains on (the cut-outs and augmented
 * samples, so the artist sees that the subjects were cut out right) and, at the end, the trained model.
 * Problems with the cast are shown before anything starts, in one sentence each.
 */
import type {
  Cast,
  CastTraining,
  Subject,
  TrainingCheck,
  TrainingLossPoint,
  TrainingSample,
} from '../../../electron/api/contract';
import { TRAINING_LIMITS } from '../../../common/training/settings';
import { useStudio } from '../app/useStudio';
import { Avatar } from '../components/CastSection';
import { NumberField } from '../components/fields';
import { formatTimeLeft, lossChart, PHASE_LABELS, timeLeftMs } from '../training/curve';

const CUT_OUT_METHODS: Record<NonNullable<TrainingSample['method']>, string> = {
  mask: 'your mask',
  segmentation: 'found by the segmentation model',
  'flood-fill': 'found from the border colour (rough)',
};

export function TrainingView() {
  const [state, studio] = useStudio();
  const { training } = state;
  const cast = state.casts.find((c) => c.id === training.castId);

  if (state.casts.length === 0) {
    return (
      <div className="workspace training-workspace">
        <div className="full-message" style={{ gridColumn: '1 / -1' }}>
          <div className="box">
            <h1>No cast to train yet</h1>
            <p className="muted">
              A cast groups the characters and objects of a story. Make one in the Library, tick its subjects
              (each with at least 3 pictures), then come back here to teach it to the model.
            </p>
            <div>
              <button className="primary" onClick={() => studio.go('library')}>
                Go to the Library
              </button>
            </div>
          </div>
        </div>
      </div>
    );
  }

  const current = cast ? training.byCast[cast.id] : undefined;
  const check = training.check && training.check.castId === cast?.id ? training.check : null;
  return (
    <div className="workspace training-workspace">
      <aside className="sidebar" aria-label="Cast and settings">
        <section className="section">
          <h2 className="section-title">Cast</h2>
          <select
            aria-label="Cast to train"
            value={cast?.id ?? ''}
            onChange={(e) => studio.chooseTrainingCast(e.target.value || null)}
            style={{ width: '100%' }}
          >
            {!cast && <option value="">Choose a cast…</option>}
            {state.casts.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
          {cast && <CastMembers cast={cast} />}
        </section>
        <SettingsSection disabled={isActive(current)} />
      </aside>
      <main className="training-main" aria-label="Training">
        {cast ? (
          <TrainingPanel cast={cast} current={current} check={check} />
        ) : (
          <p className="hint">Choose the cast to teach to the model.</p>
        )}
      </main>
    </div>
  );
}

function isActive(t: CastTraining | undefined): boolean {
  return t !== undefined && (t.state === 'queued' || t.state === 'running');
}

/** The cast's subjects: who they are, how the prompts name them, their pictures. */
function CastMembers({ cast }: { cast: Cast }) {
  const [state, studio] = useStudio();
  const members = cast.subjectIds.flatMap((id) => state.subjects.filter((s) => s.id === id));
  if (members.length === 0) {
    return (
      <p className="hint">
        Nobody is in this cast yet.{' '}
        <button className="ghost" onClick={() => studio.go('library')}>
          Add subjects in the Library
        </button>
      </p>
    );
  }
  return (
    <ul className="training-members" aria-label="Subjects of the cast">
      {members.map((s) => (
        <Member key={s.id} subject={s} />
      ))}
    </ul>
  );
}

function Member({ subject }: { subject: Subject }) {
  const count = subject.referenceImages.length;
  return (
    <li className="training-member" data-testid="training-subject">
      <div className="subject-head">
        <Avatar subject={subject} />
        <div style={{ display: 'grid', minWidth: 0 }}>
          <strong>{subject.name}</strong>
          <span className="faint">
            “a {subject.token} {subject.classNoun}”
          </span>
        </div>
      </div>
      <span className={count < 3 ? 'warning-text' : 'faint'}>
        {count} {count === 1 ? 'picture' : 'pictures'}
        {count < 3 ? ' (at least 3 are needed)' : ''}
      </span>
      <div className="mini-strip">
        {subject.referenceImages.slice(0, 8).map((image) => (
          <img key={image.hash} src={image.url} alt={`Reference of ${subject.name}`} />
        ))}
      </div>
    </li>
  );
}

function SettingsSection({ disabled }: { disabled: boolean }) {
  const [state, studio] = useStudio();
  const s = state.training.settings;
  const L = TRAINING_LIMITS;
  return (
    <section className="section" aria-label="Training settings">
      <h2 className="section-title">Settings</h2>
      <fieldset disabled={disabled} className="training-settings">
        <NumberField
          label="Training steps"
          value={s.steps}
          min={L.steps.min}
          max={L.steps.max}
          integer
          title="How long the model studies the pictures: more steps learn the subjects better and take longer"
          testId="training-steps"
          onCommit={(steps) => studio.setTrainingSettings({ steps })}
        />
        <NumberField
          label="Class pictures per class"
          value={s.classImages}
          min={L.classImages.min}
          max={L.classImages.max}
          integer
          title="Pictures of the plain class (“a cat”) the model draws first, so that the class keeps its general meaning; 0 skips them"
          testId="training-class-images"
          onCommit={(classImages) => studio.setTrainingSettings({ classImages })}
        />
        <NumberField
          label="Region checker steps (SAL)"
          value={s.segmentationSteps}
          min={L.segmentationSteps.min}
          max={L.segmentationSteps.max}
          integer
          title="Training of the model that tells the subjects apart, which SAL uses to keep each one in its region; 0 skips it"
          testId="training-segmentation-steps"
          onCommit={(segmentationSteps) => studio.setTrainingSettings({ segmentationSteps })}
        />
        <NumberField
          label="Sample pictures every … steps"
          value={s.previewEvery}
          min={L.previewEvery.min}
          max={L.previewEvery.max}
          integer
          title="Draws every subject with what the model has learnt so far; 0 draws none"
          testId="training-preview-every"
          onCommit={(previewEvery) => studio.setTrainingSettings({ previewEvery })}
        />
        <details className="settings">
          <summary>More</summary>
          <NumberField
            label="Pictures per step"
            value={s.batch}
            min={L.batch.min}
            max={L.batch.max}
            integer
            title="Pictures studied together in one step (even; half of them class pictures). Fewer is faster and noisier"
            testId="training-batch"
            onCommit={(batch) => studio.setTrainingSettings({ batch })}
          />
        </details>
      </fieldset>
    </section>
  );
}

function TrainingPanel({
  cast,
  current,
  check,
}: {
  cast: Cast;
  current: CastTraining | undefined;
  check: (TrainingCheck & { castId: string }) | null;
}) {
  const [state, studio] = useStudio();
  const { busy, error } = state.training;
  const active = isActive(current);
  const otherTraining = Object.values(state.training.byCast).find((t) => t.castId !== cast.id && isActive(t));
  const canStart = !active && !busy && check?.ok === true && !otherTraining;
  const baseName = check?.baseModelName || state.model?.name || 'the model in use';
  const model = current?.modelId ? state.models.find((m) => m.id === current.modelId) : undefined;
  return (
    <>
      <header className="training-header">
        <div>
          <h1>Teach “{cast.name}” to the model</h1>
          <p className="muted">
            {active && current
              ? `Training on ${current.baseModelName}. You can keep working; renders wait until it is done.`
              : `Starts from ${baseName} and makes a copy of it that knows every subject of the cast by its identifier token.`}
          </p>
        </div>
        <div className="button-row">
          {active ? (
            <button className="danger" disabled={busy} onClick={() => void studio.cancelTraining()}>
              Cancel training
            </button>
          ) : (
            <>
              {current?.resumable && (
                <button
                  disabled={busy || Boolean(otherTraining)}
                  title="Continue from the last checkpoint, with the same settings"
                  onClick={() => void studio.resumeTraining()}
                >
                  Resume from step {current.checkpointStep}
                </button>
              )}
              <button
                className="primary"
                disabled={!canStart}
                title={
                  check && !check.ok
                    ? 'Fix the problems listed below first'
                    : 'Start training with these settings'
                }
                onClick={() => void studio.startTraining()}
              >
                {current ? 'Train again' : 'Start training'}
              </button>
            </>
          )}
        </div>
      </header>

      {check && !check.ok && (
        <div className="training-problems" role="alert" data-testid="training-problems">
          <strong>This cast cannot be trained yet:</strong>
          <ul>
            {check.problems.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
          <button className="ghost" onClick={() => studio.go('library')}>
            Fix it in the Library
          </button>
        </div>
      )}
      {!check && <p className="hint">Checking the cast…</p>}
      {otherTraining && !active && (
        <p className="hint">“{otherTraining.castName}” is training now; one cast trains at a time.</p>
      )}
      {error && (
        <p className="error-text" role="alert" data-testid="training-error">
          {error}
        </p>
      )}

      {current && <ProgressRow training={current} />}
      {current && current.state === 'failed' && current.error && (
        <p className="error-text" role="alert" data-testid="training-failed">
          The training stopped: {current.error}
          {current.resumable ? ' — Resume continues from the last checkpoint.' : ''}
        </p>
      )}
      {current?.state === 'finished' && (
        <div className="training-result" data-testid="training-result">
          <strong>Trained model ready: {model?.name ?? `${cast.name} (trained)`}</strong>
          <span className="muted">
            In the panel editor, pick it under “Model” and paint regions for{' '}
            {current.subjects.map((s) => s.name).join(' and ')}: their prompts start with “
            {current.subjects.map((s) => `${s.identifier} ${s.classNoun}`).join('” and “')}”.
          </span>
          {model &&
            (model.active ? (
              <span className="badge in-use">renders use it</span>
            ) : (
              <button
                className="primary"
                disabled={state.modelBusy}
                onClick={() => void studio.useModel(model.id)}
              >
                Render with it
              </button>
            ))}
        </div>
      )}

      {current && (
        <div className="training-grid">
          <LossCurve points={current.losses} />
          <Previews training={current} />
        </div>
      )}
      {current && current.samples.length > 0 && <Samples training={current} />}
      {!current && (
        <p className="hint">
          Training first cuts every subject out of its pictures and shows the cut-outs here, then studies them
          with a live loss curve and sample pictures every few steps. Cancel keeps a checkpoint; Resume
          continues from it.
        </p>
      )}
    </>
  );
}

function ProgressRow({ training }: { training: CastTraining }) {
  const p = training.progress;
  const queued = training.state === 'queued';
  const running = training.state === 'running' || queued;
  const fraction = p && p.totalSteps > 0 ? p.step / p.totalSteps : 0;
  const left = running ? timeLeftMs(p) : null;
  const status =
    training.state === 'finished'
      ? 'Done'
      : training.state === 'cancelled'
        ? 'Cancelled'
        : training.state === 'failed'
          ? 'Stopped'
          : queued
            ? 'Queued: waits for the render in progress to finish'
            : p
              ? PHASE_LABELS[p.phase]
              : 'Starting…';
  return (
    <div className="training-progress" data-testid="training-progress" aria-live="polite">
      <div
        className="progress-track"
        role="progressbar"
        aria-label="Training progress"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(fraction * 100)}
      >
        <div className="progress-fill" style={{ width: `${Math.round(fraction * 100)}%` }} />
      </div>
      <span data-testid="training-phase">{status}</span>
      {p && running && !queued && (
        <span className="muted" data-testid="training-step">
          {p.phase === 'unet' ? 'step' : ''} {p.step}/{p.totalSteps}
          {p.loss !== undefined ? ` · loss ${p.loss.toFixed(4)}` : ''}
          {left !== null ? ` · ${formatTimeLeft(left)} in this part` : ''}
        </span>
      )}
    </div>
  );
}

const CHART = { width: 460, height: 180 };

/** The loss curve of the fine-tuning (raw and its moving average); a second one for the region checker. */
function LossCurve({ points }: { points: readonly TrainingLossPoint[] }) {
  const unet = points.filter((p) => p.phase === 'unet');
  const segmentation = points.filter((p) => p.phase === 'segmentation');
  return (
    <section className="training-card" aria-label="Loss curve">
      <h2 className="section-title">
        Loss <span className="spacer" />
        <span className="faint" style={{ textTransform: 'none', letterSpacing: 0 }}>
          lower is better; it wobbles
        </span>
      </h2>
      {unet.length === 0 ? (
        <p className="hint">The curve draws itself once the model starts studying the pictures.</p>
      ) : (
        <Chart points={unet} label="Loss of the fine-tuning by step" testId="loss-curve" />
      )}
      {segmentation.length > 1 && (
        <>
          <h3 className="faint" style={{ margin: '8px 0 2px', fontSize: 12 }}>
            Region checker (SAL)
          </h3>
          <Chart points={segmentation} label="Loss of the region checker by step" small />
        </>
      )}
    </section>
  );
}

function Chart({
  points,
  label,
  small = false,
  testId,
}: {
  points: readonly TrainingLossPoint[];
  label: string;
  small?: boolean;
  testId?: string;
}) {
  const size = small ? { width: CHART.width, height: 70 } : CHART;
  const chart = lossChart(points, { ...size, pad: 6 });
  if (!chart) return null;
  return (
    <figure className="loss-chart">
      <svg
        viewBox={`0 0 ${size.width} ${size.height}`}
        role="img"
        aria-label={label}
        data-testid={testId}
        data-points={points.length}
      >
        <rect x={0} y={0} width={size.width} height={size.height} className="chart-bg" />
        <path d={chart.raw} className="chart-raw" />
        <path d={chart.smooth} className="chart-smooth" />
      </svg>
      <figcaption className="faint">
        steps {chart.firstStep}–{chart.lastStep} · loss {chart.min.toPrecision(3)}–{chart.max.toPrecision(3)}
      </figcaption>
    </figure>
  );
}

function Previews({ training }: { training: CastTraining }) {
  const previews = [...training.previews].reverse();
  return (
    <section className="training-card" aria-label="Sample pictures">
      <h2 className="section-title">Sample pictures</h2>
      {previews.length === 0 ? (
        <p className="hint">
          {training.settings.previewEvery > 0
            ? `Every ${training.settings.previewEvery} steps the model draws each subject with what it has learnt so far.`
            : 'Sample pictures are off for this training.'}
        </p>
      ) : (
        <div className="preview-rows">
          {previews.map((p) => (
            <div className="preview-row" key={p.step} data-testid="training-preview">
              <span className="faint">step {p.step}</span>
              {p.images.map((i) => (
                <figure key={i.identifier}>
                  <img src={i.image.url} alt={`${i.prompt} at step ${p.step}`} />
                  <figcaption className="faint">{i.prompt}</figcaption>
                </figure>
              ))}
            </div>
          ))}
        </div>
      )}
    </section>
  );
}

function Samples({ training }: { training: CastTraining }) {
  const cutOuts = training.samples.filter((s) => s.kind === 'cut-out');
  const samples = training.samples.filter((s) => s.kind === 'sample');
  return (
    <section className="training-card" aria-label="What the training sees">
      <h2 className="section-title">What the training sees</h2>
      <p className="hint">
        Each picture's subject as it was cut out (the faded part is left out), and some of the pictures made
        from them. If a cut-out is wrong, replace that picture in the Library and train again.
      </p>
      <div className="cutout-groups">
        {training.subjects.map((s) => {
          const mine = cutOuts.filter((c) => c.subjectId === s.subjectId);
          if (mine.length === 0) return null;
          return (
            <div key={s.identifier} className="cutout-group">
              <span className="faint">{s.name}</span>
              <div className="mini-strip large">
                {mine.map((c) => (
                  <img
                    key={c.image.hash}
                    src={c.image.url}
                    alt={`Cut-out of ${s.name}`}
                    title={c.method ? `Cut out: ${CUT_OUT_METHODS[c.method]}` : undefined}
                    data-testid="training-cutout"
                  />
                ))}
              </div>
            </div>
          );
        })}
        {samples.length > 0 && (
          <div className="cutout-group">
            <span className="faint">Training pictures</span>
            <div className="mini-strip large">
              {samples.map((x) => (
                <img
                  key={x.image.hash}
                  src={x.image.url}
                  alt={x.caption ?? 'training picture'}
                  title={x.caption}
                />
              ))}
            </div>
          </div>
        )}
      </div>
    </section>
  );
}
