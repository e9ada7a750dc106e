/**
 * Pages: the story's comic pages. Left, the pages in reading order (add, delete with undo, drag to
 * reorder); middle, the page canvas with the story's panels in a strip to drag into its slots, and
 * captions and balloons on top; right, the layout (template, size, resolution, gutter, margin), the
 * selected caption or balloon, and export to PNG, PDF and CBZ.
 */
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import type { Id, PageExportFormat, PageSizeId, PageTemplateId } from '../../../electron/api/contract';
import {
  PAGE_LIMITS,
  PAGE_SIZE_IDS,
  PAGE_SIZES,
  PAGE_TEMPLATE_IDS,
  PAGE_TEMPLATES,
  pageLayout,
  pagePixelSize,
} from '../../../common/pages/layout';
import { LETTERING_LIMITS, letteringDrawing } from '../../../common/pages/lettering';
import { useStudio } from '../app/useStudio';
import { NumberField } from '../components/fields';
import { canRedo, canUndo, redoLabel, undoLabel } from '../editor/history';
import { dropIndex } from '../editor/storyboard';
import { setLetteringFontSize, setLetteringText } from '../pages/book';
import { PANEL_DRAG_TYPE, PageSheet } from '../pages/PageSheet';

const PAGE_DRAG_TYPE = 'text/x-msp-page';

export function PagesView() {
  const [state, studio] = useStudio();
  const story = studio.story;

  // Delete removes the selected caption or balloon (text fields keep their own Delete key).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Delete' && e.key !== 'Backspace') return;
      const t = e.target;
      if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName)))
        return;
      if (!studio.state.letteringId) return;
      e.preventDefault();
      studio.removeSelectedLettering();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [studio]);

  if (!story) {
    return (
      <div className="workspace">
        <div className="full-message">
          <div className="box">
            <h1>Start a story</h1>
            <p className="muted">
              Pages lay out the panels of a story. Give the story a title in the bar above.
            </p>
          </div>
        </div>
      </div>
    );
  }

  const order = state.book.present.order;
  const page = studio.page;
  return (
    <div className="workspace pages-workspace">
      <PageList />
      <main className="pages-main" aria-label="Page">
        {order.length === 0 || !page ? (
          <div className="full-message">
            <div className="box">
              <h1>No pages yet</h1>
              <p className="muted">
                A page arranges panels in a layout: tiers, grids or a splash panel, with gutters and margins
                for print. Drag rendered panels into its slots, then letter it with captions and speech
                balloons, and export it for print (PNG, PDF) or comic readers (CBZ).
              </p>
              <div>
                <button className="primary" onClick={() => void studio.addPage()}>
                  + Add page
                </button>
              </div>
              {state.bookError && (
                <p className="error-text" role="alert">
                  {state.bookError}
                </p>
              )}
            </div>
          </div>
        ) : (
          <>
            <div className="pages-toolbar">
              <strong>
                Page {order.indexOf(page.id) + 1} of {order.length}
              </strong>
              <span className="muted">
                {PAGE_TEMPLATES[page.template].label} · {PAGE_SIZES[page.size].label}
              </span>
              <span style={{ flex: 1 }} />
              <button title="A rectangular narration box" onClick={() => studio.addLettering('caption')}>
                + Caption
              </button>
              <button
                title="A speech balloon with a tail you drag"
                onClick={() => studio.addLettering('speech')}
              >
                + Balloon
              </button>
            </div>
            {state.bookError && (
              <p className="error-text page-error" role="alert" data-testid="page-error">
                {state.bookError}
              </p>
            )}
            <PageStage pageId={page.id} />
            <PanelStrip />
          </>
        )}
      </main>
      <aside className="sidebar right pages-inspector">
        {!page && (
          <section className="section">
            <div className="section-title">Layout and export</div>
            <p className="hint">
              Templates, page size, print resolution, gutters and margins, the selected caption or balloon,
              and export to PNG, PDF and CBZ appear here once the story has a page.
            </p>
          </section>
        )}
        {page && <LayoutSection />}
        {page && <LetteringSection />}
        {page && <ExportSection />}
      </aside>
      {undoLabel(state.book) === 'Delete page' && (
        <div className="toast" role="status">
          Page deleted
          <button onClick={() => studio.undoBook()}>Undo</button>
        </div>
      )}
    </div>
  );
}

/** The pages in reading order, as small pictures: select, delete, drag to reorder. */
function PageList() {
  const [state, studio] = useStudio();
  const [dragFrom, setDragFrom] = useState<number | null>(null);
  const [dropAt, setDropAt] = useState<{ index: number; after: boolean } | null>(null);
  const { order, pages } = state.book.present;
  const livePanels = useLivePanels();
  const undoText = undoLabel(state.book);
  const redoText = redoLabel(state.book);
  return (
    <aside className="sidebar page-list" aria-label="Pages of the story">
      <div className="section">
        <div className="section-title">
          Pages <span className="spacer" />
          <span className="faint">{order.length}</span>
        </div>
        <div className="undo-row">
          <button
            disabled={!canUndo(state.book)}
            title={undoText ? `Undo ${undoText} (Ctrl+Z)` : 'Nothing to undo'}
            onClick={() => studio.undoBook()}
          >
            Undo
          </button>
          <button
            disabled={!canRedo(state.book)}
            title={redoText ? `Redo ${redoText} (Ctrl+Shift+Z)` : 'Nothing to redo'}
            onClick={() => studio.redoBook()}
          >
            Redo
          </button>
        </div>
      </div>
      <ol className="page-thumbs" aria-label="Pages in reading order">
        {order.map((id, index) => {
          const doc = pages[id];
          if (!doc) return null;
          const classes = ['page-thumb'];
          if (id === state.pageId) classes.push('current');
          if (dragFrom === index) classes.push('dragging');
          if (dropAt?.index === index && dragFrom !== null && dragFrom !== index)
            classes.push(dropAt.after ? 'drop-after' : 'drop-before');
          return (
            <li
              key={id}
              className={classes.join(' ')}
              data-testid="page-thumb"
              data-page-id={id}
              draggable
              onDragStart={(e) => {
                setDragFrom(index);
                e.dataTransfer.effectAllowed = 'move';
                e.dataTransfer.setData(PAGE_DRAG_TYPE, id);
              }}
              onDragEnd={() => {
                setDragFrom(null);
                setDropAt(null);
              }}
              onDragOver={(e) => {
                if (dragFrom === null) return;
                e.preventDefault();
                const box = e.currentTarget.getBoundingClientRect();
                const after = e.clientY > box.top + box.height / 2;
                if (dropAt?.index !== index || dropAt.after !== after) setDropAt({ index, after });
              }}
              onDrop={(e) => {
                e.preventDefault();
                if (dragFrom !== null && dropAt)
                  studio.movePage(dragFrom, dropIndex(dragFrom, dropAt.index, dropAt.after));
                setDragFrom(null);
                setDropAt(null);
              }}
            >
              <button
                className="page-thumb-image"
                aria-pressed={id === state.pageId}
                aria-label={`Show page ${index + 1}`}
                title={`Show page ${index + 1}`}
                onClick={() => studio.selectPage(id)}
                draggable={false}
              >
                <PageSheet
                  pageId={id}
                  doc={doc}
                  widthPx={96}
                  panels={state.panels}
                  livePanels={livePanels}
                  interactive={false}
                  label={`Page ${index + 1}`}
                />
              </button>
              <div className="page-thumb-foot">
                <span>Page {index + 1}</span>
                <button
                  className="ghost danger"
                  title={`Delete page ${index + 1} (undo with Ctrl+Z)`}
                  aria-label={`Delete page ${index + 1}`}
                  onClick={() => studio.deletePage(id)}
                >
                  ✕
                </button>
              </div>
            </li>
          );
        })}
      </ol>
      <div className="section">
        <button
          className="add-page"
          onClick={() => void studio.addPage()}
          title="A new page after this one, with its layout"
        >
          + Add page
        </button>
      </div>
    </aside>
  );
}

/** The panels that are still in the story (a deleted panel shows as such on a page). */
function useLivePanels(): ReadonlySet<Id> {
  const [state] = useStudio();
  const order = state.board.present.order;
  return useMemo(() => new Set(order), [order]);
}

/** The page canvas, fitted to the space it has. */
function PageStage({ pageId }: { pageId: Id }) {
  const [state] = useStudio();
  const host = useRef<HTMLDivElement>(null);
  const [space, setSpace] = useState({ width: 0, height: 0 });
  const livePanels = useLivePanels();
  useLayoutEffect(() => {
    const el = host.current;
    if (!el) return;
    const measure = () => setSpace({ width: el.clientWidth, height: el.clientHeight });
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  const doc = state.book.present.pages[pageId];
  if (!doc) return null;
  const size = PAGE_SIZES[doc.size];
  const padding = 24;
  const width = Math.max(
    120,
    Math.min(space.width - 2 * padding, ((space.height - 2 * padding) * size.widthMm) / size.heightMm),
  );
  return (
    <div className="page-stage" ref={host}>
      {space.width > 0 && (
        <PageSheet
          pageId={pageId}
          doc={doc}
          widthPx={Math.floor(width)}
          panels={state.panels}
          livePanels={livePanels}
          interactive
          label="Page canvas"
        />
      )}
    </div>
  );
}

/** The story's panels in reading order, to drag into slots (their latest render). */
function PanelStrip() {
  const [state] = useStudio();
  const order = state.board.present.order;
  return (
    <section className="panel-strip" aria-label="Panels of the story">
      <div className="panel-strip-title">
        <strong>Panels</strong>
        <span className="hint">Drag a panel into a slot; its latest render fills the slot.</span>
      </div>
      <ol className="panel-strip-list">
        {order.length === 0 && (
          <li className="hint">The story has no panels yet; add them in the Storyboard.</li>
        )}
        {order.map((id, i) => {
          const panel = state.panels[id];
          if (!panel) return null;
          const image = panel.renders[0]?.image;
          return (
            <li
              key={id}
              className="strip-panel"
              data-testid="strip-panel"
              data-panel-id={id}
              draggable
              title={
                image
                  ? `${panel.title}: drag into a slot`
                  : `${panel.title} is not rendered yet; it can be placed and rendered later`
              }
              onDragStart={(e) => {
                e.dataTransfer.effectAllowed = 'copy';
                e.dataTransfer.setData(PANEL_DRAG_TYPE, id);
              }}
            >
              {image ? (
                <img src={image.url} alt={`Panel ${i + 1}`} draggable={false} />
              ) : (
                <span className="faint">not rendered</span>
              )}
              <span className="strip-number">{i + 1}</span>
            </li>
          );
        })}
      </ol>
    </section>
  );
}

function LayoutSection() {
  const [state, studio] = useStudio();
  const page = studio.page;
  if (!page) return null;
  const pixels = pagePixelSize(page.size, page.dpi);
  return (
    <section className="section" aria-label="Layout">
      <div className="section-title">Layout</div>
      <div className="template-grid" role="group" aria-label="Templates">
        {PAGE_TEMPLATE_IDS.map((t) => (
          <button
            key={t}
            className="template"
            aria-pressed={page.template === t}
            aria-label={PAGE_TEMPLATES[t].label}
            title={`${PAGE_TEMPLATES[t].label} (${PAGE_TEMPLATES[t].tiers.reduce((n, tier) => n + tier.panels.length, 0)} panels)`}
            onClick={() => studio.setPageTemplate(t)}
          >
            <TemplateIcon template={t} />
            <span>{PAGE_TEMPLATES[t].label}</span>
          </button>
        ))}
      </div>
      <label className="field">
        <span>Page size</span>
        <select
          aria-label="Page size"
          value={page.size}
          onChange={(e) => studio.setPageSettings({ size: e.target.value as PageSizeId })}
        >
          {PAGE_SIZE_IDS.map((s) => (
            <option key={s} value={s}>
              {PAGE_SIZES[s].label}
            </option>
          ))}
        </select>
      </label>
      <NumberField
        label="Print resolution (dpi)"
        value={page.dpi}
        min={PAGE_LIMITS.dpi.min}
        max={PAGE_LIMITS.dpi.max}
        integer
        testId="page-dpi"
        title="Dots per inch of exported pages (300 for print)"
        onCommit={(dpi) => studio.setPageSettings({ dpi })}
      />
      <MmSlider
        label="Gutter"
        value={page.gutterMm}
        max={PAGE_LIMITS.gutterMm.max}
        title="White space between panels, in millimetres"
        onChange={(gutterMm) => studio.setPageSettings({ gutterMm }, `gutter:${page.id}`)}
      />
      <MmSlider
        label="Margin"
        value={page.marginMm}
        max={PAGE_LIMITS.marginMm.max}
        title="White space between the panels and the page edge, in millimetres"
        onChange={(marginMm) => studio.setPageSettings({ marginMm }, `margin:${page.id}`)}
      />
      <p className="hint">
        Exports at {pixels.width} × {pixels.height} px. Gutter and margin are millimetres on the printed page.
      </p>
      {state.layoutError && (
        <p className="error-text" role="alert" data-testid="layout-error">
          {state.layoutError}
        </p>
      )}
    </section>
  );
}

function MmSlider({
  label,
  value,
  max,
  title,
  onChange,
}: {
  label: string;
  value: number;
  max: number;
  title: string;
  onChange: (value: number) => void;
}) {
  return (
    <label className="slider-row" title={title}>
      <span>{label}</span>
      <span className="mm">{value} mm</span>
      <input
        type="range"
        aria-label={`${label} (mm)`}
        min={0}
        max={max}
        step={0.5}
        value={value}
        onChange={(e) => onChange(Number(e.target.value))}
      />
    </label>
  );
}

/** A template as a small picture of its slots. */
function TemplateIcon({ template }: { template: PageTemplateId }) {
  const layout = pageLayout(template, { size: 'a4', dpi: 300, gutterMm: 8, marginMm: 14 });
  return (
    <svg viewBox={`0 0 ${layout.widthMm} ${layout.heightMm}`} width={30} height={42} aria-hidden="true">
      <rect width={layout.widthMm} height={layout.heightMm} fill="currentColor" opacity={0.15} />
      {layout.slots.map((s, i) => (
        <rect key={i} x={s.x} y={s.y} width={s.width} height={s.height} fill="currentColor" opacity={0.75} />
      ))}
    </svg>
  );
}

/** The selected caption or balloon: its text, letter size, delete. */
function LetteringSection() {
  const [state, studio] = useStudio();
  const page = studio.page;
  const lettering = page?.lettering.find((l) => l.id === state.letteringId);
  if (!page) return null;
  if (!lettering) {
    return (
      <section className="section" aria-label="Lettering">
        <div className="section-title">Lettering</div>
        <p className="hint">
          Add a caption or a balloon with the buttons above the page; click one to edit its text. Drag it to
          move it, its corner to resize it, and a balloon's round handle to point its tail.
        </p>
      </section>
    );
  }
  const kind = lettering.kind === 'caption' ? 'Caption' : 'Balloon';
  const size = PAGE_SIZES[page.size];
  const overflows = letteringDrawing(lettering, size).text.overflows;
  return (
    <section className="section" aria-label="Lettering">
      <div className="section-title">{kind}</div>
      <label className="field">
        <span>Text</span>
        <textarea
          id="lettering-text"
          aria-label="Lettering text"
          rows={4}
          maxLength={LETTERING_LIMITS.textLength}
          value={lettering.text}
          onChange={(e) => {
            const text = e.target.value;
            studio.editBook(
              (b) => setLetteringText(b, page.id, lettering.id, text),
              `Edit ${kind.toLowerCase()} text`,
              `text:${lettering.id}`,
            );
          }}
        />
      </label>
      {overflows && (
        <p className="warning-text" role="status">
          The text does not fit; make the {kind.toLowerCase()} bigger or the letters smaller.
        </p>
      )}
      <NumberField
        label="Letter size (pt)"
        value={lettering.fontSizePt}
        min={LETTERING_LIMITS.fontSizePt.min}
        max={LETTERING_LIMITS.fontSizePt.max}
        step={0.5}
        testId="lettering-size"
        onCommit={(pt) =>
          studio.editBook((b) => setLetteringFontSize(b, page.id, lettering.id, pt), 'Change letter size')
        }
      />
      <div className="button-row">
        <button className="danger" title="Delete (Del)" onClick={() => studio.removeSelectedLettering()}>
          Delete {kind.toLowerCase()}
        </button>
      </div>
    </section>
  );
}

const EXPORTS: { format: PageExportFormat; label: string; title: string }[] = [
  { format: 'png', label: 'PNG', title: 'This page as a PNG at print resolution' },
  { format: 'pdf', label: 'PDF', title: 'All pages, one PDF page each, at print resolution' },
  { format: 'cbz', label: 'CBZ', title: 'All pages as a comic book archive for comic readers' },
];

function ExportSection() {
  const [state, studio] = useStudio();
  const { running, message } = state.pageExport;
  return (
    <section className="section" aria-label="Export">
      <div className="section-title">Export</div>
      <div className="button-row export-buttons">
        {EXPORTS.map((e) => (
          <button
            key={e.format}
            title={e.title}
            disabled={running !== null}
            onClick={() => void studio.exportPages(e.format)}
          >
            {running === e.format ? `Exporting ${e.label}…` : `Export ${e.label}`}
          </button>
        ))}
      </div>
      <p className="hint">PNG exports the page shown; PDF and CBZ export every page in reading order.</p>
      {message?.kind === 'error' && (
        <p className="error-text" role="alert" data-testid="export-error">
          {message.text}
        </p>
      )}
      {message?.kind === 'info' && (
        <p className="hint export-message" role="status" data-testid="export-message">
          {message.text}
          {message.download && (
            <>
              {' '}
              <a href={message.download.url} download={message.download.fileName}>
                Download again
              </a>
            </>
          )}
        </p>
      )}
    </section>
  );
}
