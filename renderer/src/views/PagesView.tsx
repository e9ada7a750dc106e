import { useStudio } from '../app/useStudio';

/**
 * Pages: layout templates, panels in slots, balloons and export are the next stage of the studio. Until
 * then this place says so plainly and shows the reading order pages will be laid out from.
 */
export function PagesView() {
  const [state, studio] = useStudio();
  const order = state.board.present.order;
  return (
    <div className="workspace">
      <main className="pages" aria-label="Pages">
        <div className="pages-intro">
          <h1>Pages are not built yet</h1>
          <p className="muted">
            This is where finished panels will be laid out as comic pages: layout templates (single, tiers,
            grids, splash), panels dragged from the storyboard into slots, gutter and margin controls,
            captions and speech balloons, and export to print-resolution PNG, PDF and CBZ. It comes in a later
            version of MSP Studio; nothing here is stored yet.
          </p>
          <p className="muted">Pages will take the panels in the storyboard's reading order:</p>
          {order.length === 0 ? (
            <p className="hint">The story has no panels yet.</p>
          ) : (
            <div className="reading-order">
              {order.map((id, i) => {
                const panel = state.panels[id];
                const image = panel?.renders[0]?.image;
                return (
                  <figure key={id}>
                    <button
                      className="mini"
                      title="Open in the panel editor"
                      onClick={() => void studio.openPanel(id)}
                    >
                      {image ? (
                        <img src={image.url} alt={`Panel ${i + 1}`} />
                      ) : (
                        <span className="faint">not rendered</span>
                      )}
                    </button>
                    <figcaption>Panel {i + 1}</figcaption>
                  </figure>
                );
              })}
            </div>
          )}
          <div>
            <button onClick={() => studio.go('storyboard')}>Back to the storyboard</button>
          </div>
        </div>
      </main>
    </div>
  );
}
