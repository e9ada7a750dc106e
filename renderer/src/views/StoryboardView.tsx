import { useState } from 'react';
import type { Panel } from '../../../electron/api/contract';
import { useStudio } from '../app/useStudio';
import { CastSection } from '../components/CastSection';
import { canRedo, canUndo, redoLabel, undoLabel } from '../editor/history';
import { dropIndex } from '../editor/storyboard';

/** The story's panels as cards in reading order: add, duplicate, delete (undoable), drag to reorder. */
export function StoryboardView() {
  const [state, studio] = useStudio();
  const story = studio.story;
  const [dragFrom, setDragFrom] = useState<number | null>(null);
  const [dropAt, setDropAt] = useState<{ index: number; after: boolean } | null>(null);
  const [title, setTitle] = useState<string | null>(null);

  if (!story) {
    return (
      <div className="workspace">
        <aside className="sidebar" />
        <div className="full-message">
          <div className="box">
            <h1>Start a story</h1>
            <p className="muted">
              A story holds its panels in reading order and the cast that appears in them. Give it a title in
              the bar above to begin.
            </p>
          </div>
        </div>
      </div>
    );
  }

  const order = state.board.present.order;
  const undoText = undoLabel(state.board);
  const redoText = redoLabel(state.board);

  return (
    <div className="workspace">
      <aside className="sidebar">
        <CastSection />
      </aside>
      <main className="board" aria-label="Storyboard">
        <div className="board-toolbar">
          <input
            className="title-input"
            aria-label="Story title"
            value={title ?? story.title}
            onChange={(e) => setTitle(e.target.value)}
            onBlur={() => {
              if (title !== null) void studio.renameStory(title);
              setTitle(null);
            }}
            onKeyDown={(e) => {
              if (e.key === 'Enter') e.currentTarget.blur();
            }}
          />
          <span className="muted">
            {order.length} {order.length === 1 ? 'panel' : 'panels'}
          </span>
          <span style={{ flex: 1 }} />
          <button
            disabled={!canUndo(state.board)}
            title={undoText ? `Undo ${undoText} (Ctrl+Z)` : 'Nothing to undo'}
            onClick={() => studio.undoBoard()}
          >
            Undo
          </button>
          <button
            disabled={!canRedo(state.board)}
            title={redoText ? `Redo ${redoText} (Ctrl+Shift+Z)` : 'Nothing to redo'}
            onClick={() => studio.redoBoard()}
          >
            Redo
          </button>
          <button className="primary" onClick={() => void studio.addPanel()}>
            + Add panel
          </button>
        </div>
        {state.boardError && (
          <p className="error-text" role="alert">
            {state.boardError}
          </p>
        )}
        <ol
          className="cards"
          aria-label="Panels in reading order"
          style={{ listStyle: 'none', padding: 0, margin: 0 }}
        >
          {order.map((id, index) => {
            const panel = state.panels[id];
            if (!panel) return null;
            const classes = ['card'];
            if (dragFrom === index) classes.push('dragging');
            if (dropAt?.index === index && dragFrom !== null && dragFrom !== index) {
              classes.push(dropAt.after ? 'drop-after' : 'drop-before');
            }
            return (
              <li
                key={id}
                className={classes.join(' ')}
                data-testid="panel-card"
                data-panel-id={id}
                draggable
                onDragStart={(e) => {
                  setDragFrom(index);
                  e.dataTransfer.effectAllowed = 'move';
                  e.dataTransfer.setData('text/x-msp-panel', id);
                }}
                onDragEnd={() => {
                  setDragFrom(null);
                  setDropAt(null);
                }}
                onDragOver={(e) => {
                  if (dragFrom === null) return;
                  e.preventDefault();
                  const box = e.currentTarget.getBoundingClientRect();
                  const after = e.clientX > box.left + box.width / 2;
                  if (dropAt?.index !== index || dropAt.after !== after) setDropAt({ index, after });
                }}
                onDrop={(e) => {
                  e.preventDefault();
                  if (dragFrom !== null && dropAt)
                    studio.movePanel(dragFrom, dropIndex(dragFrom, dropAt.index, dropAt.after));
                  setDragFrom(null);
                  setDropAt(null);
                }}
              >
                <PanelCard panel={panel} index={index} />
              </li>
            );
          })}
          <li style={{ listStyle: 'none' }}>
            <button className="add-card" style={{ width: '100%' }} onClick={() => void studio.addPanel()}>
              + Add panel
              <small>a new panel at the end of the story</small>
            </button>
          </li>
        </ol>
      </main>
    </div>
  );
}

function PanelCard({ panel, index }: { panel: Panel; index: number }) {
  const [, studio] = useStudio();
  const latest = panel.renders[0];
  const map = panel.request.segmentMap;
  const prompt = panel.request.prompt.trim();
  return (
    <>
      <button
        className="card-image"
        title="Open in the panel editor"
        onClick={() => void studio.openPanel(panel.id)}
        draggable={false}
      >
        {latest ? (
          <img src={latest.image.url} alt={`Panel ${index + 1}, latest render`} draggable={false} />
        ) : map ? (
          <img className="map" src={map.url} alt={`Panel ${index + 1}, segment map`} draggable={false} />
        ) : (
          <span className="placeholder">Not painted yet: open it to paint regions and pose the cast</span>
        )}
        <span className="card-number">{index + 1}</span>
        {latest ? (
          <span className="card-tag">seed {latest.seed}</span>
        ) : (
          map && <span className="card-tag">not rendered</span>
        )}
      </button>
      <div className="card-body">
        <div className="card-prompt">
          {prompt === '' ? <span className="faint">No prompt yet</span> : prompt}
        </div>
        <div className="card-actions">
          <button
            title="Duplicate this panel (its request, not its renders)"
            onClick={() => void studio.duplicatePanel(panel.id)}
          >
            Duplicate
          </button>
          <button
            className="danger"
            title="Delete (undo with Ctrl+Z)"
            onClick={() => studio.deletePanel(panel.id)}
          >
            Delete
          </button>
          <button className="open" onClick={() => void studio.openPanel(panel.id)}>
            Open
          </button>
        </div>
      </div>
    </>
  );
}
