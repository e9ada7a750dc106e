/**
 * A comic page drawn as SVG in millimetres, from the same layout and lettering modules the exporter
 * composes with (common/pages): slots with their panels' latest renders cropped to cover them, frames,
 * captions and balloons. Interactive on the Pages canvas (drop panels into slots, clear a slot, drag
 * lettering, its tail and its size); a plain picture in the page list.
 *
 * The page document stays in the store; this view only reports gestures.
 */
import { useRef, useState } from 'react';
import type { PointerEvent as ReactPointerEvent } from 'react';
import type { Id, Lettering, Panel } from '../../../electron/api/contract';
import { coverCrop, FRAME_MM, LayoutError, pageLayout } from '../../../common/pages/layout';
import type { PageLayout, Rect } from '../../../common/pages/layout';
import {
  frameRects,
  LETTERING_FONT,
  LETTERING_STYLE,
  letteringDrawing,
} from '../../../common/pages/lettering';
import { useStudio } from '../app/useStudio';
import { clearSlot, moveLettering, moveTail, placePanel, resizeLettering } from './book';
import type { PageDoc } from './book';

/** The drag-and-drop type of a panel dragged from the panel strip. */
export const PANEL_DRAG_TYPE = 'text/x-msp-panel';

export interface PageSheetProps {
  pageId: Id;
  doc: PageDoc;
  /** Display width in CSS pixels. */
  widthPx: number;
  /** Panels by id (their latest renders are shown) and which of them are still in the story. */
  panels: Readonly<Record<Id, Panel>>;
  livePanels: ReadonlySet<Id>;
  interactive: boolean;
  label: string;
}

type Drag =
  | { mode: 'move'; id: string; start: { x: number; y: number }; origin: { x: number; y: number } }
  | { mode: 'resize'; id: string; start: { x: number; y: number }; origin: { width: number; height: number } }
  | { mode: 'tail'; id: string };

const DRAG_LABELS: Record<Drag['mode'], string> = {
  move: 'Move lettering',
  resize: 'Resize lettering',
  tail: 'Move balloon tail',
};

export function PageSheet({ pageId, doc, widthPx, panels, livePanels, interactive, label }: PageSheetProps) {
  const [state, studio] = useStudio();
  const svg = useRef<SVGSVGElement>(null);
  const drag = useRef<Drag | null>(null);
  const [dropSlot, setDropSlot] = useState<number | null>(null);

  let layout: PageLayout;
  try {
    layout = pageLayout(doc.template, doc);
  } catch (error) {
    if (!(error instanceof LayoutError)) throw error;
    return <div className="page-broken">{error.message}</div>;
  }
  const heightPx = (widthPx * layout.heightMm) / layout.widthMm;
  /** Millimetres per screen pixel: handles and labels keep their size on screen. */
  const mmPerPx = layout.widthMm / widthPx;
  const selected = interactive ? state.letteringId : null;

  /** The pointer's position as page fractions. */
  const pointer = (e: { clientX: number; clientY: number }) => {
    const r = (svg.current as SVGSVGElement).getBoundingClientRect();
    return { x: (e.clientX - r.left) / r.width, y: (e.clientY - r.top) / r.height };
  };

  const startDrag = (e: ReactPointerEvent, l: Lettering, mode: Drag['mode']) => {
    if (!interactive || e.button !== 0) return;
    e.stopPropagation();
    e.preventDefault();
    studio.selectLettering(l.id);
    const start = pointer(e);
    drag.current =
      mode === 'move'
        ? { mode, id: l.id, start, origin: { x: l.x, y: l.y } }
        : mode === 'resize'
          ? { mode, id: l.id, start, origin: { width: l.width, height: l.height } }
          : { mode, id: l.id };
    svg.current?.setPointerCapture(e.pointerId);
    studio.beginBookGesture();
  };

  const onPointerMove = (e: ReactPointerEvent) => {
    const d = drag.current;
    if (!d) return;
    const p = pointer(e);
    if (d.mode === 'move') {
      const x = d.origin.x + p.x - d.start.x;
      const y = d.origin.y + p.y - d.start.y;
      studio.previewBook((b) => moveLettering(b, pageId, d.id, x, y));
    } else if (d.mode === 'resize') {
      const width = d.origin.width + p.x - d.start.x;
      const height = d.origin.height + p.y - d.start.y;
      studio.previewBook((b) => resizeLettering(b, pageId, d.id, width, height));
    } else {
      studio.previewBook((b) => moveTail(b, pageId, d.id, p.x, p.y));
    }
  };

  const endDrag = (e: ReactPointerEvent) => {
    const d = drag.current;
    if (!d) return;
    drag.current = null;
    if (svg.current?.hasPointerCapture(e.pointerId)) svg.current.releasePointerCapture(e.pointerId);
    studio.endBookGesture(DRAG_LABELS[d.mode]);
  };

  return (
    <svg
      ref={svg}
      className={interactive ? 'page-sheet interactive' : 'page-sheet'}
      width={widthPx}
      height={heightPx}
      viewBox={`0 0 ${layout.widthMm} ${layout.heightMm}`}
      role="img"
      aria-label={label}
      data-testid={interactive ? 'page-canvas' : undefined}
      data-template={doc.template}
      onPointerDown={interactive ? () => studio.selectLettering(null) : undefined}
      onPointerMove={interactive ? onPointerMove : undefined}
      onPointerUp={interactive ? endDrag : undefined}
      onPointerCancel={interactive ? endDrag : undefined}
    >
      <rect x={0} y={0} width={layout.widthMm} height={layout.heightMm} fill="#ffffff" />
      {layout.slots.map((rect, i) => (
        <Slot
          key={i}
          index={i}
          rect={rect}
          panelId={doc.slots[i] ?? null}
          panels={panels}
          livePanels={livePanels}
          interactive={interactive}
          mmPerPx={mmPerPx}
          dropping={dropSlot === i}
          onDragState={(over) => setDropSlot((current) => (over ? i : current === i ? null : current))}
          onDrop={(panelId) => {
            setDropSlot(null);
            studio.editBook((b) => placePanel(b, pageId, i, panelId), 'Place panel');
          }}
          onClear={() => studio.editBook((b) => clearSlot(b, pageId, i), 'Clear slot')}
        />
      ))}
      {frameRects(layout).map((f, i) => (
        <rect
          key={i}
          x={f.x}
          y={f.y}
          width={f.width}
          height={f.height}
          fill="none"
          stroke={LETTERING_STYLE.ink}
          strokeWidth={FRAME_MM}
          pointerEvents="none"
        />
      ))}
      {doc.lettering.map((l) => (
        <LetteringShape
          key={l.id}
          lettering={l}
          layout={layout}
          selected={selected === l.id}
          interactive={interactive}
          mmPerPx={mmPerPx}
          onPointerDown={startDrag}
        />
      ))}
    </svg>
  );
}

function Slot({
  index,
  rect,
  panelId,
  panels,
  livePanels,
  interactive,
  mmPerPx,
  dropping,
  onDragState,
  onDrop,
  onClear,
}: {
  index: number;
  rect: Rect;
  panelId: Id | null;
  panels: Readonly<Record<Id, Panel>>;
  livePanels: ReadonlySet<Id>;
  interactive: boolean;
  mmPerPx: number;
  dropping: boolean;
  onDragState: (over: boolean) => void;
  onDrop: (panelId: Id) => void;
  onClear: () => void;
}) {
  const panel = panelId ? panels[panelId] : undefined;
  const live = panelId !== null && livePanels.has(panelId);
  const image = live ? panel?.renders[0]?.image : undefined;
  const size = image && { width: image.width ?? 0, height: image.height ?? 0 };
  const crop = size && size.width > 0 && size.height > 0 ? coverCrop(size, rect) : undefined;
  const fontMm = Math.min(rect.width / 12, 13 * mmPerPx);
  const note =
    panelId === null
      ? interactive
        ? 'Drop a panel here'
        : ''
      : !live
        ? 'This panel was deleted'
        : !image
          ? `${panel?.title ?? 'The panel'} is not rendered yet`
          : '';
  return (
    <g
      className={`page-slot${dropping ? ' drop-target' : ''}`}
      data-testid={interactive ? 'page-slot' : undefined}
      data-slot={index}
      data-panel-id={panelId ?? ''}
      onDragOver={
        interactive
          ? (e) => {
              if (!e.dataTransfer.types.includes(PANEL_DRAG_TYPE)) return;
              e.preventDefault();
              e.dataTransfer.dropEffect = 'copy';
              onDragState(true);
            }
          : undefined
      }
      onDragLeave={interactive ? () => onDragState(false) : undefined}
      onDrop={
        interactive
          ? (e) => {
              const id = e.dataTransfer.getData(PANEL_DRAG_TYPE);
              e.preventDefault();
              onDragState(false);
              if (id) onDrop(id);
            }
          : undefined
      }
    >
      <rect
        x={rect.x}
        y={rect.y}
        width={rect.width}
        height={rect.height}
        fill={image ? '#ffffff' : dropping ? '#dbeafe' : '#eeeef0'}
      />
      {image && crop && size && (
        <svg
          x={rect.x}
          y={rect.y}
          width={rect.width}
          height={rect.height}
          viewBox={`${crop.x} ${crop.y} ${crop.width} ${crop.height}`}
          preserveAspectRatio="none"
        >
          <image href={image.url} width={size.width} height={size.height} preserveAspectRatio="none" />
        </svg>
      )}
      {dropping && (
        <rect
          x={rect.x}
          y={rect.y}
          width={rect.width}
          height={rect.height}
          fill="rgba(74, 158, 255, 0.25)"
          stroke="#4a9eff"
          strokeWidth={3 * mmPerPx}
        />
      )}
      {note && (
        <text
          x={rect.x + rect.width / 2}
          y={rect.y + rect.height / 2}
          fontSize={fontMm}
          textAnchor="middle"
          dominantBaseline="middle"
          fill="#6b6b76"
          fontFamily="system-ui, sans-serif"
          pointerEvents="none"
        >
          {note}
        </text>
      )}
      {interactive && panelId !== null && (
        <g
          className="slot-clear"
          role="button"
          tabIndex={0}
          aria-label={`Clear slot ${index + 1}`}
          transform={`translate(${rect.x + rect.width - 14 * mmPerPx} ${rect.y + 14 * mmPerPx})`}
          onPointerDown={(e) => e.stopPropagation()}
          onClick={onClear}
          onKeyDown={(e) => {
            if (e.key === 'Enter' || e.key === ' ') {
              e.preventDefault();
              onClear();
            }
          }}
        >
          <title>{`Clear slot ${index + 1} (the panel stays in the story)`}</title>
          <circle r={10 * mmPerPx} fill="rgba(20, 20, 24, 0.75)" />
          <path
            d={`M ${-4 * mmPerPx} ${-4 * mmPerPx} L ${4 * mmPerPx} ${4 * mmPerPx} M ${4 * mmPerPx} ${-4 * mmPerPx} L ${-4 * mmPerPx} ${4 * mmPerPx}`}
            stroke="#ffffff"
            strokeWidth={2 * mmPerPx}
            strokeLinecap="round"
          />
        </g>
      )}
    </g>
  );
}

function LetteringShape({
  lettering,
  layout,
  selected,
  interactive,
  mmPerPx,
  onPointerDown,
}: {
  lettering: Lettering;
  layout: PageLayout;
  selected: boolean;
  interactive: boolean;
  mmPerPx: number;
  onPointerDown: (e: ReactPointerEvent, l: Lettering, mode: Drag['mode']) => void;
}) {
  const [, studio] = useStudio();
  const d = letteringDrawing(lettering, layout);
  const handle = 7 * mmPerPx;
  return (
    <g
      className={`lettering${selected ? ' selected' : ''}`}
      data-testid={interactive ? 'lettering' : undefined}
      data-kind={lettering.kind}
      data-lettering-id={lettering.id}
      data-box={
        interactive ? [lettering.x, lettering.y, lettering.width, lettering.height].join(',') : undefined
      }
      aria-label={
        interactive ? `${lettering.kind === 'caption' ? 'Caption' : 'Balloon'}: ${lettering.text}` : undefined
      }
    >
      <path
        d={d.outline}
        fill={d.fill}
        stroke={LETTERING_STYLE.ink}
        strokeWidth={LETTERING_STYLE.strokeMm}
        strokeLinejoin="round"
        onPointerDown={(e) => onPointerDown(e, lettering, 'move')}
        onDoubleClick={interactive ? () => document.getElementById('lettering-text')?.focus() : undefined}
      />
      {d.text.lines.length > 0 && (
        <text
          fontFamily={LETTERING_FONT}
          fontSize={d.text.fontSizeMm}
          fill={LETTERING_STYLE.ink}
          textAnchor={d.text.anchor}
          pointerEvents="none"
        >
          {d.text.lines.map((line, i) => (
            <tspan key={i} x={line.x} y={line.y}>
              {line.text}
            </tspan>
          ))}
        </text>
      )}
      {selected && (
        <>
          <rect
            x={d.box.x}
            y={d.box.y}
            width={d.box.width}
            height={d.box.height}
            fill="none"
            stroke="#4a9eff"
            strokeWidth={1.5 * mmPerPx}
            strokeDasharray={`${4 * mmPerPx} ${3 * mmPerPx}`}
            pointerEvents="none"
          />
          <rect
            className="handle resize"
            data-testid="resize-handle"
            x={d.box.x + d.box.width - handle / 2}
            y={d.box.y + d.box.height - handle / 2}
            width={handle}
            height={handle}
            fill="#4a9eff"
            stroke="#ffffff"
            strokeWidth={mmPerPx}
            onPointerDown={(e) => onPointerDown(e, lettering, 'resize')}
          >
            <title>Drag to resize</title>
          </rect>
        </>
      )}
      {interactive && d.tip && (selected || lettering.kind === 'speech') && (
        <circle
          className="handle tail"
          data-testid="tail-handle"
          cx={d.tip.x}
          cy={d.tip.y}
          r={(selected ? 6 : 4) * mmPerPx}
          fill={selected ? '#4a9eff' : 'rgba(74, 158, 255, 0.55)'}
          stroke="#ffffff"
          strokeWidth={mmPerPx}
          onPointerDown={(e) => onPointerDown(e, lettering, 'tail')}
          onDoubleClick={() => studio.selectLettering(lettering.id)}
        >
          <title>Drag to point the tail at the speaker</title>
        </circle>
      )}
    </g>
  );
}
