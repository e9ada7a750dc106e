/**
 * The subject library: subjects as cards (name, class noun, identifier token, reference images that
 * are dropped onto the card, the casts and trained models that include them), casts that group
 * subjects for a story (each with its way to the Training place), and the models renders can use (the
 * default one, imported model folders and models trained on a cast).
 */
import { useRef, useState } from 'react';
import type { Cast, ModelEntry, Subject } from '../../../electron/api/contract';
import { useStudio } from '../app/useStudio';
import { Avatar } from '../components/CastSection';

export function LibraryView() {
  const [state, studio] = useStudio();
  return (
    <div className="workspace">
      <main className="library" aria-label="Library">
        <section>
          <h2>Subjects</h2>
          <p className="hint">
            A subject is a character or object the model learns from a handful of pictures. Drop PNG, JPEG or
            WebP images onto a card to add references.
          </p>
          <div className="subject-grid">
            {state.subjects.map((s) => (
              <SubjectCard key={s.id} subject={s} />
            ))}
            <NewSubjectCard />
          </div>
        </section>
        <CastsSection />
        <ModelsSection />
      </main>
      {state.deletedSubject && (
        <div className="toast" role="status">
          Deleted {state.deletedSubject.name}
          <button onClick={() => void studio.restoreSubject()}>Undo</button>
          <button className="ghost" aria-label="Dismiss" onClick={() => studio.dismissDeletedSubject()}>
            ✕
          </button>
        </div>
      )}
    </div>
  );
}

function SubjectCard({ subject }: { subject: Subject }) {
  const [state, studio] = useStudio();
  const [over, setOver] = useState(false);
  const [draft, setDraft] = useState<{ name?: string; classNoun?: string; token?: string }>({});
  const input = useRef<HTMLInputElement>(null);
  const message = state.libraryMessages[subject.id];

  const commit = (field: 'name' | 'classNoun' | 'token') => {
    const value = draft[field];
    setDraft((d) => ({ ...d, [field]: undefined }));
    if (value === undefined || value.trim() === '' || value === subject[field]) return;
    void studio.updateSubject({ id: subject.id, [field]: value.trim() });
  };

  const field = (key: 'name' | 'classNoun' | 'token', label: string, wide = false) => (
    <label className={wide ? 'wide' : undefined}>
      {label}
      <input
        aria-label={`${label} of ${subject.name}`}
        value={draft[key] ?? subject[key]}
        onChange={(e) => setDraft((d) => ({ ...d, [key]: e.target.value }))}
        onBlur={() => commit(key)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') e.currentTarget.blur();
        }}
      />
    </label>
  );

  return (
    <article
      className={`subject-card${over ? ' drop-target' : ''}`}
      data-testid="subject-card"
      aria-label={subject.name}
      onDragOver={(e) => {
        if (!e.dataTransfer.types.includes('Files')) return;
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        void studio.addReferenceImages(subject.id, [...e.dataTransfer.files]);
      }}
    >
      <div className="subject-head">
        <Avatar subject={subject} />
        <div style={{ display: 'grid', minWidth: 0 }}>
          <strong>{subject.name}</strong>
          <span className="faint">
            “{subject.token} {subject.classNoun}”
          </span>
        </div>
        <span style={{ flex: 1 }} />
        <button
          className="ghost danger"
          title={`Delete ${subject.name} (can be undone)`}
          onClick={() => void studio.deleteSubject(subject.id)}
        >
          Delete
        </button>
      </div>
      <div className="subject-fields">
        {field('name', 'Name')}
        {field('classNoun', 'Class')}
        {field('token', 'Identifier token', true)}
      </div>
      <Memberships subject={subject} />
      <div className="ref-strip" aria-label={`Reference images of ${subject.name}`}>
        {subject.referenceImages.length === 0 && <span className="hint">No reference images yet.</span>}
        {subject.referenceImages.map((image) => (
          <div className="ref" key={image.hash}>
            <img src={image.url} alt={`Reference of ${subject.name}`} />
            <button
              title="Remove this image"
              onClick={() => void studio.removeReferenceImage(subject.id, image.hash)}
            >
              ✕
            </button>
          </div>
        ))}
      </div>
      <button className="drop-zone" onClick={() => input.current?.click()}>
        Drop images here or click to choose
      </button>
      <input
        ref={input}
        type="file"
        multiple
        hidden
        data-testid="reference-input"
        onChange={(e) => {
          const files = [...(e.target.files ?? [])];
          e.target.value = '';
          if (files.length > 0) void studio.addReferenceImages(subject.id, files);
        }}
      />
      {message && (
        <p
          className={message.kind === 'error' ? 'error-text' : 'hint'}
          role={message.kind === 'error' ? 'alert' : 'status'}
          data-testid="subject-message"
        >
          {message.text}
        </p>
      )}
    </article>
  );
}

/** The casts a subject is in, and the trained models that know it. */
function Memberships({ subject }: { subject: Subject }) {
  const [state] = useStudio();
  const casts = state.casts.filter((c) => c.subjectIds.includes(subject.id));
  const models = state.models.filter((m) => m.cast?.subjects.some((s) => s.subjectId === subject.id));
  if (casts.length === 0 && models.length === 0) return null;
  return (
    <div className="memberships faint" data-testid="subject-memberships">
      {casts.length > 0 && <span>In {casts.map((c) => c.name).join(', ')}</span>}
      {models.length > 0 && (
        <span>
          {' · '}Trained in {models.map((m) => m.name).join(', ')}
        </span>
      )}
    </div>
  );
}

function NewSubjectCard() {
  const [state, studio] = useStudio();
  const [name, setName] = useState('');
  const [classNoun, setClassNoun] = useState('');
  const [token, setToken] = useState('');
  const message = state.libraryMessages['new-subject'];
  const suggest = () => {
    if (token === '')
      void studio.suggestToken().then((t) => setToken((current) => (current === '' ? t : current)));
  };
  return (
    <form
      className="subject-card new-subject"
      aria-label="New subject"
      onSubmit={(e) => {
        e.preventDefault();
        void studio.createSubject({ name, classNoun, token }).then((ok) => {
          if (ok) {
            setName('');
            setClassNoun('');
            setToken('');
          }
        });
      }}
    >
      <strong>New subject</strong>
      <div className="subject-fields">
        <label>
          Name
          <input
            aria-label="New subject name"
            placeholder="e.g. Pip"
            value={name}
            onFocus={suggest}
            onChange={(e) => setName(e.target.value)}
          />
        </label>
        <label>
          Class
          <input
            aria-label="New subject class"
            placeholder="e.g. cat, man in a comic style"
            value={classNoun}
            onChange={(e) => setClassNoun(e.target.value)}
          />
        </label>
        <label className="wide">
          Identifier token
          <input
            aria-label="New subject token"
            placeholder="a rare word, suggested for you"
            value={token}
            onFocus={suggest}
            onChange={(e) => setToken(e.target.value)}
          />
        </label>
      </div>
      <div className="button-row">
        <button type="submit" className="primary">
          Add subject
        </button>
        <span className="hint">The token is a rare word the model learns to mean this subject.</span>
      </div>
      {message && (
        <p className="error-text" role="alert">
          {message.text}
        </p>
      )}
    </form>
  );
}

function CastsSection() {
  const [state, studio] = useStudio();
  const [name, setName] = useState('');
  const story = studio.story;
  const message = state.libraryMessages.casts;
  return (
    <aside className="casts" aria-label="Casts">
      <h2>Casts</h2>
      <p className="hint">
        A cast groups the subjects of a story; the story's cast sits beside the canvas while you compose.
      </p>
      {state.casts.map((cast) => (
        <CastCard key={cast.id} cast={cast} current={story?.castId === cast.id} />
      ))}
      <form
        className="button-row"
        onSubmit={(e) => {
          e.preventDefault();
          void studio.createCast(name).then((c) => c && setName(''));
        }}
      >
        <input
          aria-label="New cast name"
          placeholder="New cast name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          style={{ flex: 1 }}
        />
        <button type="submit">Add cast</button>
      </form>
      {message && <p className="error-text">{message.text}</p>}
    </aside>
  );
}

function CastCard({ cast, current }: { cast: Cast; current: boolean }) {
  const [state, studio] = useStudio();
  const [name, setName] = useState<string | null>(null);
  const story = studio.story;
  const message = state.libraryMessages[cast.id];
  const trained = studio.trainedModels(cast.id);
  return (
    <div className={`cast${current ? ' current' : ''}`} data-testid="cast">
      <div className="cast-head">
        <input
          aria-label="Cast name"
          value={name ?? cast.name}
          onChange={(e) => setName(e.target.value)}
          onBlur={() => {
            if (name !== null && name.trim() !== '' && name !== cast.name)
              void studio.updateCast({ id: cast.id, name: name.trim() });
            setName(null);
          }}
        />
        {current ? (
          <span className="badge">this story</span>
        ) : (
          story && (
            <button
              title={`Use this cast for “${story.title}”`}
              onClick={() => void studio.setStoryCast(cast.id)}
            >
              Use
            </button>
          )
        )}
        <button
          className="ghost danger"
          title="Delete the cast (its subjects stay in the library)"
          onClick={() => void studio.deleteCast(cast.id)}
        >
          ✕
        </button>
      </div>
      <div className="cast-members">
        {state.subjects.length === 0 && <span className="hint">Add subjects to pick members.</span>}
        {state.subjects.map((s) => (
          <label key={s.id}>
            <input
              type="checkbox"
              checked={cast.subjectIds.includes(s.id)}
              onChange={() => void studio.toggleCastMember(cast.id, s.id)}
            />
            {s.name} <span className="faint">({s.classNoun})</span>
          </label>
        ))}
      </div>
      <div className="cast-foot">
        <button
          title={`Teach ${cast.name} to the model (the Training place)`}
          onClick={() => studio.openTraining(cast.id)}
        >
          {trained.length > 0 ? 'Train again…' : 'Train…'}
        </button>
        <span className="faint">
          {trained.length > 0 ? `Trained: ${trained.map((m) => m.name).join(', ')}` : 'Not trained yet'}
        </span>
      </div>
      {message && <p className="error-text">{message.text}</p>}
    </div>
  );
}

/** The models renders can use: the default and imported folders; import, choose, remove. */
function ModelsSection() {
  const [state, studio] = useStudio();
  const [path, setPath] = useState('');
  const model = state.model;
  const electron = state.appInfo?.mode === 'electron';
  const message = state.modelMessage;
  return (
    <section className="models" id="models" aria-label="Models">
      <h2>Models</h2>
      <p className="hint">
        {model
          ? `Renders use ${model.name} on ${model.executionProvider.toUpperCase()}${
              model.providerFallbackReason ? ` (${model.providerFallbackReason})` : ''
            }.`
          : state.modelError
            ? `No model is loaded: ${state.modelError}`
            : 'Loading the model…'}{' '}
        A model folder holds a Stable Diffusion model in the diffusers ONNX layout (unet/, text_encoder/,
        vae_decoder/, tokenizer/, scheduler/; controlnet/ for poses). Imported folders stay where they are.
      </p>
      <ul className="model-list" aria-label="Available models">
        {state.models.map((m) => (
          <ModelRow key={m.id} entry={m} />
        ))}
      </ul>
      <form
        className="model-import"
        aria-label="Import a model folder"
        onSubmit={(e) => {
          e.preventDefault();
          void studio.importModel(path).then((ok) => ok && setPath(''));
        }}
      >
        <input
          aria-label="Model folder path"
          placeholder={
            electron
              ? 'Choose a folder or type its full path'
              : 'Full path of a model folder on this computer'
          }
          value={path}
          spellCheck={false}
          onChange={(e) => setPath(e.target.value)}
        />
        {electron && (
          <button
            type="button"
            title="Choose the model folder"
            onClick={() => void studio.pickModelFolder().then((p) => p && setPath(p))}
          >
            Browse…
          </button>
        )}
        <button type="submit" className="primary" disabled={state.modelBusy}>
          Import
        </button>
      </form>
      {message && (
        <p
          className={message.kind === 'error' ? 'error-text' : 'hint'}
          role={message.kind === 'error' ? 'alert' : 'status'}
          data-testid="model-message"
        >
          {message.text}
        </p>
      )}
    </section>
  );
}

function ModelRow({ entry }: { entry: ModelEntry }) {
  const [state, studio] = useStudio();
  const d = entry.details;
  const facts = d
    ? [
        d.sizes.defaultImageSize ? `${d.sizes.defaultImageSize} px` : 'no default size',
        `VAE ×${d.sizes.vaeScaleFactor}`,
        `text ${d.sizes.sequenceLength} tokens × ${d.sizes.hiddenSize}`,
        d.hasControlNet ? 'ControlNet (poses)' : 'no ControlNet',
        d.hasVaeEncoder ? 'VAE encoder' : 'no VAE encoder',
        ...(d.hasSegmentation ? ['segmentation (SAL)'] : []),
      ]
    : [];
  const source = entry.cast
    ? 'trained in the studio'
    : entry.kind === 'folder'
      ? 'imported'
      : entry.source === 'random'
        ? 'built-in test model (random weights)'
        : entry.source === 'env'
          ? 'from MSP_MODEL_DIR'
          : 'embedded';
  return (
    <li
      className={`model-row${entry.active ? ' active' : ''}`}
      data-testid="model-entry"
      data-model-id={entry.id}
    >
      <div className="model-head">
        <strong>{entry.name}</strong>
        <span className="badge">{source}</span>
        <span style={{ flex: 1 }} />
        {entry.active ? (
          <span className="badge in-use">in use</span>
        ) : (
          <button
            disabled={state.modelBusy || entry.problem !== undefined}
            title={`Render with ${entry.name}`}
            onClick={() => void studio.useModel(entry.id)}
          >
            Use
          </button>
        )}
        {entry.kind === 'folder' && (
          <button
            className="ghost danger"
            disabled={state.modelBusy}
            title="Remove from the list (the folder and its files stay)"
            onClick={() => void studio.removeModel(entry.id)}
          >
            Remove
          </button>
        )}
      </div>
      {entry.cast && (
        <div>
          Knows {entry.cast.subjects.map((s) => `${s.name} (“${s.identifier} ${s.classNoun}”)`).join(', ')} ·{' '}
          {entry.cast.steps} steps
        </div>
      )}
      {entry.path && <code className="model-path">{entry.path}</code>}
      {facts.length > 0 && <div className="faint">{facts.join(' · ')}</div>}
      {entry.problem && <p className="error-text">{entry.problem}</p>}
    </li>
  );
}
