import { useStudio } from '../app/useStudio';

/**
 * The model renders use, chosen beside the canvas: the default model, imported folders, and models
 * trained on a cast (they know its subjects by their identifier tokens). Picking one switches the model
 * for every render; a trained model of the story's cast is suggested when another one is in use.
 */
export function ModelPicker() {
  const [state, studio] = useStudio();
  const active = state.models.find((m) => m.active);
  const story = studio.story;
  const trained = studio.trainedModels(story?.castId);
  const suggestion = !active?.cast && trained.find((m) => m.problem === undefined);
  const members = studio.castSubjects;
  const unknown = active?.cast
    ? members.filter((s) => !active.cast?.subjects.some((t) => t.subjectId === s.id))
    : [];
  const message = state.modelMessage;
  return (
    <section className="section" aria-label="Model">
      <h2 className="section-title">Model</h2>
      <select
        aria-label="Model for renders"
        value={active?.id ?? ''}
        disabled={state.modelBusy || state.models.length === 0}
        onChange={(e) => void studio.useModel(e.target.value)}
        style={{ width: '100%' }}
      >
        {!active && <option value="">Loading…</option>}
        {state.models.map((m) => (
          <option key={m.id} value={m.id} disabled={m.problem !== undefined}>
            {m.name}
          </option>
        ))}
      </select>
      {state.modelBusy && <p className="hint">Loading the model…</p>}
      {active?.cast && (
        <p className="hint" data-testid="model-knows">
          Knows {active.cast.subjects.map((s) => `${s.name} (“${s.identifier} ${s.classNoun}”)`).join(', ')}
        </p>
      )}
      {suggestion && (
        <p className="hint">
          “{suggestion.name}” was trained on this story's cast.{' '}
          <button className="ghost" onClick={() => void studio.useModel(suggestion.id)}>
            Use it
          </button>
        </p>
      )}
      {unknown.length > 0 && (
        <p className="warning-text">
          {unknown.map((s) => s.name).join(' and ')} {unknown.length === 1 ? 'is' : 'are'} not in the cast
          this model was trained on, so it does not know what{' '}
          {unknown.length === 1 ? 'it looks' : 'they look'} like.
        </p>
      )}
      {message?.kind === 'error' && (
        <p className="error-text" role="alert">
          {message.text}
        </p>
      )}
    </section>
  );
}
