import { useEffect, useState } from 'react';
import { PLACES } from './app/store';
import { useStudio } from './app/useStudio';
import { commandForKey } from './editor/shortcuts';
import { LibraryView } from './views/LibraryView';
import { PagesView } from './views/PagesView';
import { PanelEditorView } from './views/PanelEditorView';
import { StoryboardView } from './views/StoryboardView';
import { TrainingView } from './views/TrainingView';

function isTextField(target: EventTarget | null): boolean {
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) &&
    !(target instanceof HTMLInputElement && ['checkbox', 'range', 'color', 'button'].includes(target.type))
  );
}

export function App() {
  const [state, studio] = useStudio();

  // Shortcuts work everywhere in the window; letters typed into a text field stay text.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const command = commandForKey({
        key: e.key,
        ctrlKey: e.ctrlKey,
        metaKey: e.metaKey,
        shiftKey: e.shiftKey,
        altKey: e.altKey,
        inTextField: isTextField(e.target),
      });
      if (!command) return;
      const place = studio.state.place;
      switch (command.type) {
        case 'undo':
          if (place === 'library' || place === 'training') return;
          studio.undo();
          break;
        case 'redo':
          if (place === 'library' || place === 'training') return;
          studio.redo();
          break;
        case 'render':
          void studio.render();
          break;
        case 'tool':
          if (place !== 'panel') return;
          studio.setTool(command.tool);
          break;
        case 'brush-size':
          if (place !== 'panel') return;
          studio.stepBrush(command.direction);
          break;
        default:
          if (place !== 'panel') return;
          studio.viewCommand(command.type);
      }
      e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [studio]);

  const { connection } = state;
  return (
    <div className="app">
      <TopBar />
      {connection.kind === 'loading' && (
        <div className="full-message">
          <p className="muted">Connecting to the studio…</p>
        </div>
      )}
      {connection.kind === 'failed' && (
        <div className="full-message">
          <div className="box">
            <h1>The studio could not start</h1>
            <p className="error-text" role="alert">
              {connection.message}
            </p>
            <div>
              <button onClick={() => window.location.reload()}>Try again</button>
            </div>
          </div>
        </div>
      )}
      {connection.kind === 'ready' && state.place === 'storyboard' && <StoryboardView />}
      {connection.kind === 'ready' && state.place === 'panel' && <PanelEditorView />}
      {connection.kind === 'ready' && state.place === 'library' && <LibraryView />}
      {connection.kind === 'ready' && state.place === 'training' && <TrainingView />}
      {connection.kind === 'ready' && state.place === 'pages' && <PagesView />}
    </div>
  );
}

function TopBar() {
  const [state, studio] = useStudio();
  const [creating, setCreating] = useState(false);
  const [title, setTitle] = useState('');
  const model = state.model;

  const create = async () => {
    await studio.createStory(title);
    if (studio.state.storyError === null) {
      setCreating(false);
      setTitle('');
    }
  };

  return (
    <header className="topbar">
      <div className="brand">
        <span className="brand-mark" aria-hidden="true" />
        MSP Studio
      </div>
      <div className="story-picker">
        <span className="muted">Story</span>
        {creating || state.stories.length === 0 ? (
          <form
            className="story-picker"
            onSubmit={(e) => {
              e.preventDefault();
              void create();
            }}
          >
            <input
              aria-label="New story title"
              placeholder="Title of the new story"
              value={title}
              autoFocus={creating}
              onChange={(e) => setTitle(e.target.value)}
            />
            <button type="submit" className="primary">
              Create story
            </button>
            {state.stories.length > 0 && (
              <button type="button" className="ghost" onClick={() => setCreating(false)}>
                Cancel
              </button>
            )}
          </form>
        ) : (
          <>
            <select
              aria-label="Story"
              value={state.storyId ?? ''}
              onChange={(e) => void studio.selectStory(e.target.value)}
            >
              {state.stories.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.title}
                </option>
              ))}
            </select>
            <button className="ghost" title="Start a new story" onClick={() => setCreating(true)}>
              + New story
            </button>
          </>
        )}
        {state.storyError && (
          <span className="error-text" role="alert">
            {state.storyError}
          </span>
        )}
      </div>
      <nav className="places" aria-label="Places">
        {PLACES.map((p) => (
          <button
            key={p.id}
            aria-current={state.place === p.id ? 'page' : undefined}
            disabled={p.id === 'panel' && state.board.present.order.length === 0}
            title={p.id === 'panel' && state.board.present.order.length === 0 ? 'Add a panel first' : p.label}
            onClick={() => studio.go(p.id)}
          >
            {p.label}
          </button>
        ))}
      </nav>
      <button
        className="model-badge"
        title={`${
          model
            ? `${model.note}${model.providerFallbackReason ? ` (${model.providerFallbackReason})` : ''}`
            : (state.modelError ?? 'Loading the model…')
        } Click to choose a model.`}
        onClick={() => {
          studio.go('library');
          requestAnimationFrame(() => document.getElementById('models')?.scrollIntoView({ block: 'start' }));
        }}
      >
        <span className={`dot${model?.source === 'random' ? ' random' : ''}`} />
        <span>
          {model
            ? `${model.name} · ${model.executionProvider.toUpperCase()}`
            : state.modelError
              ? 'Model unavailable'
              : 'Loading model…'}
        </span>
      </button>
    </header>
  );
}
