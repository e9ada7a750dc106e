/**
 * The panel editor: cast and tools on the left, the canvas in the middle, regions / prompts /
 * skeletons / settings on the right, render history and the Render button below. Every control edits
 * the document through a pure edit (one undo step; typing folds into one step per field).
 */
import { useRef, useState } from 'react';
import type { ApiIssue, Render, Subject } from '../../../electron/api/contract';
import {
  KEYPOINT_NAMES,
  mirrorPerson,
  OPENPOSE_COLORS,
  parseOpenPoseJson,
  POSE_TEMPLATE_NAMES,
  setKeypointVisible,
  toOpenPoseJson,
} from '../../../native-models/pose/openpose';
import type { PoseTemplateName } from '../../../native-models/pose/openpose';
import { errorMessage } from '../api/client';
import type { RenderState } from '../app/store';
import { useStudio } from '../app/useStudio';
import { PanelCanvas } from '../canvas/PanelCanvas';
import { CastSection } from '../components/CastSection';
import { ModelPicker } from '../components/ModelPicker';
import { downloadText, NumberField } from '../components/fields';
import { ToolIcon } from '../components/ToolIcon';
import {
  addSkeleton,
  duplicateSkeleton,
  linkSkeleton,
  recolorRegion,
  regionOfPerson,
  removeRegion,
  removeSkeleton,
  resizePanel,
  setBackgroundPrompt,
  setNegativePrompt,
  setPose,
  setPrompt,
  setScaffolding,
  updateRegion,
  updateSettings,
} from '../editor/document';
import type { PanelDocument, Region } from '../editor/document';
import { canRedo, canUndo, redoLabel, undoLabel } from '../editor/history';
import { BRUSH_SIZES } from '../editor/shortcuts';
import { jointLabel, TOOLS } from '../editor/tools';
import type { EditorIssue } from '../editor/validate';

const SCHEDULER_LABELS: Record<string, string> = {
  ddim: 'DDIM',
  euler: 'Euler',
  euler_a: 'Euler ancestral',
  dpmpp_2m: 'DPM++ 2M',
  dpmpp_2m_karras: 'DPM++ 2M Karras',
};

/** Where a backend issue path (`regions[1].prompt`, `request.prompt`) belongs in the editor. */
function issueRegionIndex(issue: ApiIssue): number | null {
  const match = /regions\[(\d+)\]/.exec(issue.path);
  return match ? Number(match[1]) : null;
}

export function PanelEditorView() {
  const [state, studio] = useStudio();
  const panelId = state.panelId;
  const session = panelId ? state.editors[panelId] : undefined;

  if (!panelId || !session) {
    return (
      <div className="workspace">
        <aside className="sidebar">
          <CastSection />
        </aside>
        <div className="full-message">
          <div className="box">
            {state.panelLoadError ? (
              <>
                <h1>The panel could not be opened</h1>
                <p className="error-text" role="alert">
                  {state.panelLoadError}
                </p>
                <div>
                  <button onClick={() => studio.go('storyboard')}>Back to the storyboard</button>
                </div>
              </>
            ) : panelId ? (
              <p className="muted">Opening the panel…</p>
            ) : (
              <>
                <h1>No panel open</h1>
                <p className="muted">Open a panel from the storyboard, or add one there.</p>
                <div>
                  <button onClick={() => studio.go('storyboard')}>Go to the storyboard</button>
                </div>
              </>
            )}
          </div>
        </div>
      </div>
    );
  }

  const doc = session.history.present;
  const renderState: RenderState = state.renders[panelId] ?? {
    job: null,
    preview: null,
    error: null,
    issues: [],
  };
  const attempted = renderState.error !== null;
  const issues = studio.issues(doc);
  const panel = state.panels[panelId];
  const renders = panel?.renders ?? [];
  const shownId = state.shownRender[panelId] ?? renders[0]?.id ?? null;
  const shown = renders.find((r) => r.id === shownId) ?? null;
  const running = renderState.job?.state === 'running' || renderState.job?.state === 'queued';
  const imageUrl = (running ? renderState.preview?.url : undefined) ?? shown?.image.url ?? null;
  const canvasIssues = issues.filter((i) => i.target.kind === 'canvas');
  const index = state.board.present.order.indexOf(panelId);

  return (
    <div className="workspace editor">
      <aside className="sidebar" aria-label="Cast and tools">
        <CastSection doc={doc} />
        <ModelPicker />
        <ToolsSection />
      </aside>
      <main className="canvas-area" aria-label="Panel canvas">
        <PanelCanvas doc={doc} imageUrl={imageUrl} />
        {doc.regions.length === 0 && doc.pose.people.length === 0 && (
          <div className="canvas-empty-hint">
            Pick a cast member or just paint (B) — each color is a region with its own prompt
          </div>
        )}
        <LinkedMoveOffer doc={doc} />
        {canvasIssues.length > 0 && (
          <div className="canvas-issues" role="alert">
            {canvasIssues.map((i) => (
              <div key={i.message}>
                {i.message}
                {i.target.kind === 'canvas' && i.target.unclaimedColor && (
                  <ClaimColorButton color={i.target.unclaimedColor} />
                )}
              </div>
            ))}
          </div>
        )}
        <div className="statusline">
          <span>
            Panel {index + 1} · {doc.width}×{doc.height}
          </span>
          <span className="grow">{state.tools.hint ?? toolHint(state.tools.tool)}</span>
          <span
            className={session.saveError ? 'error-text' : undefined}
            role={session.saveError ? 'alert' : undefined}
            data-testid="save-status"
          >
            {session.saveError ?? (session.saving ? 'Saving…' : 'Saved')}
          </span>
        </div>
      </main>
      <aside className="sidebar right" aria-label="Regions, prompt and settings">
        <RegionsSection doc={doc} issues={issues} attempted={attempted} serverIssues={renderState.issues} />
        <PromptSection doc={doc} issues={issues} attempted={attempted} serverIssues={renderState.issues} />
        <SkeletonSection doc={doc} issues={issues} />
        <SettingsSection doc={doc} issues={issues} />
      </aside>
      <RenderBar doc={doc} renders={renders} shown={shown} renderState={renderState} />
    </div>
  );
}

function toolHint(tool: string): string {
  return TOOLS.find((t) => t.id === tool)?.hint ?? '';
}

// ---------------------------------------------------------------------------------------------
// Left: tools

function ToolsSection() {
  const [state, studio] = useStudio();
  const session = state.panelId ? state.editors[state.panelId] : undefined;
  const { tools } = state;
  const undoText = session && undoLabel(session.history);
  const redoText = session && redoLabel(session.history);
  return (
    <>
      <section className="section" aria-label="Tools">
        <h2 className="section-title">Tools</h2>
        <div className="tool-grid" role="toolbar" aria-label="Tools">
          {TOOLS.map((t) => (
            <button
              key={t.id}
              className="tool"
              aria-pressed={tools.tool === t.id}
              title={`${t.label} (${t.key}) — ${t.hint}`}
              onClick={() => studio.setTool(t.id)}
            >
              <ToolIcon tool={t.id} />
              <span>{t.label}</span>
              <kbd>{t.key}</kbd>
            </button>
          ))}
        </div>
        {(tools.tool === 'brush' || tools.tool === 'eraser') && (
          <label className="slider-row" title="Brush size in panel pixels ( [ and ] change it )">
            <span>Size</span>
            <span>{tools.brushSize} px</span>
            <input
              type="range"
              min={0}
              max={BRUSH_SIZES.length - 1}
              value={Math.max(
                0,
                BRUSH_SIZES.findIndex((s) => s >= tools.brushSize),
              )}
              onChange={(e) => studio.setTools({ brushSize: BRUSH_SIZES[Number(e.target.value)] })}
              aria-label="Brush size"
            />
          </label>
        )}
        <label className="slider-row" title="How strongly the segment map covers the render">
          <span>Overlay</span>
          <span>{Math.round(tools.overlay * 100)}%</span>
          <input
            type="range"
            min={0}
            max={100}
            value={Math.round(tools.overlay * 100)}
            onChange={(e) => studio.setTools({ overlay: Number(e.target.value) / 100 })}
            aria-label="Overlay opacity"
          />
        </label>
      </section>
      <section className="section" aria-label="History">
        <h2 className="section-title">Edit</h2>
        <div className="undo-row">
          <button
            disabled={!session || !canUndo(session.history)}
            title={undoText ? `Undo ${undoText} (Ctrl+Z)` : 'Nothing to undo'}
            onClick={() => studio.undoPanel()}
          >
            Undo
          </button>
          <button
            disabled={!session || !canRedo(session.history)}
            title={redoText ? `Redo ${redoText} (Ctrl+Shift+Z)` : 'Nothing to redo'}
            onClick={() => studio.redoPanel()}
          >
            Redo
          </button>
        </div>
        <p className="hint" style={{ marginTop: 8 }}>
          Space-drag or middle button pans, wheel zooms, Ctrl+0 is 100%, Ctrl+1 fits.
        </p>
      </section>
    </>
  );
}

// ---------------------------------------------------------------------------------------------
// Right: regions

function RegionsSection({
  doc,
  issues,
  attempted,
  serverIssues,
}: {
  doc: PanelDocument;
  issues: EditorIssue[];
  attempted: boolean;
  serverIssues: readonly ApiIssue[];
}) {
  const [state, studio] = useStudio();
  const cast = studio.castSubjects;
  const [colorError, setColorError] = useState<{ id: string; message: string } | null>(null);
  return (
    <section className="section" aria-label="Regions">
      <h2 className="section-title">
        Regions<span className="spacer"></span>
        <button
          className="ghost"
          title="A region not bound to a cast member"
          onClick={() => studio.addFreeRegion()}
        >
          + free region
        </button>
      </h2>
      {doc.regions.length === 0 && (
        <p className="hint">
          Nothing painted yet. Pick a cast member on the left, or paint: the first stroke makes a free region.
        </p>
      )}
      <div className="region-list">
        {doc.regions.map((region, i) => {
          const mine = issues.filter((x) => x.target.kind === 'region' && x.target.regionId === region.id);
          const server = serverIssues.filter((x) => issueRegionIndex(x) === i);
          const shownErrors = attempted || server.length > 0;
          const subject = cast.find((s) => s.id === region.subjectId);
          const active = state.tools.activeRegionId === region.id;
          return (
            <div
              key={region.id}
              className={`region${active ? ' active' : ''}${shownErrors && (mine.length > 0 || server.length > 0) ? ' invalid' : ''}`}
              data-testid="region"
              onClick={() => studio.setTools({ activeRegionId: region.id, hint: null })}
            >
              <div className="region-head">
                <span className="index">#{i + 1}</span>
                <span
                  className="swatch"
                  style={{ background: region.color }}
                  title={`${region.color} — click to change`}
                >
                  <input
                    type="color"
                    aria-label={`Color of region ${i + 1}`}
                    value={region.color}
                    onChange={(e) => {
                      const message = studio.edit(
                        (d) => recolorRegion(d, region.id, e.target.value),
                        'Recolor region',
                      );
                      setColorError(message ? { id: region.id, message } : null);
                    }}
                  />
                </span>
                <select
                  aria-label={`Who region ${i + 1} shows`}
                  value={region.subjectId ?? ''}
                  onClick={(e) => e.stopPropagation()}
                  onChange={(e) =>
                    studio.edit(
                      (d) =>
                        updateRegion(d, region.id, {
                          subjectId: e.target.value === '' ? null : e.target.value,
                        }),
                      'Bind region',
                    )
                  }
                >
                  <option value="">free (no cast member)</option>
                  {cast.map((s: Subject) => (
                    <option key={s.id} value={s.id}>
                      {s.name}
                    </option>
                  ))}
                  {region.subjectId !== null && !subject && (
                    <option value={region.subjectId}>missing subject</option>
                  )}
                </select>
                {region.person !== null && (
                  <span
                    className="link-badge"
                    data-testid="region-link"
                    title={`Linked to skeleton Person ${region.person + 1}: moving one offers to move the other`}
                  >
                    <svg viewBox="0 0 16 16" aria-hidden="true">
                      <path d="M6.5 9.5l3-3M7 4.5l1.2-1.2a2.6 2.6 0 0 1 3.7 3.7L10.7 8.2M9 11.5l-1.2 1.2a2.6 2.6 0 0 1-3.7-3.7L5.3 7.8" />
                    </svg>
                    P{region.person + 1}
                  </span>
                )}
                <button
                  className="ghost danger"
                  title="Delete the region and erase its paint"
                  aria-label={`Delete region ${i + 1}`}
                  onClick={(e) => {
                    e.stopPropagation();
                    studio.edit((d) => removeRegion(d, region.id), 'Delete region');
                  }}
                >
                  ✕
                </button>
              </div>
              <input
                className="prompt"
                aria-label={`Prompt of region ${i + 1}`}
                placeholder={
                  subject ? `what ${subject.name} is doing, e.g. "waving"` : 'what is here, e.g. "a lamp"'
                }
                value={region.prompt}
                onFocus={() => studio.setTools({ activeRegionId: region.id })}
                onChange={(e) =>
                  studio.edit(
                    (d) => updateRegion(d, region.id, { prompt: e.target.value }),
                    'Edit region prompt',
                    `region-prompt:${region.id}`,
                  )
                }
              />
              {colorError?.id === region.id && <span className="error-text">{colorError.message}</span>}
              {mine.map((x) => (
                <span
                  key={x.message}
                  className={shownErrors && x.severity === 'error' ? 'error-text' : 'hint'}
                >
                  {x.message}
                </span>
              ))}
              {server.map((x) => (
                <span key={x.path + x.message} className="error-text">
                  {x.message}
                </span>
              ))}
            </div>
          );
        })}
      </div>
      <label className="field" style={{ marginTop: 10, marginBottom: 0 }}>
        <span>Background (what is not painted)</span>
        <input
          aria-label="Background prompt"
          placeholder="same as the panel prompt"
          value={doc.backgroundPrompt}
          onChange={(e) =>
            studio.edit((d) => setBackgroundPrompt(d, e.target.value), 'Edit background prompt', 'background')
          }
        />
      </label>
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// Right: prompts

function PromptSection({
  doc,
  issues,
  attempted,
  serverIssues,
}: {
  doc: PanelDocument;
  issues: EditorIssue[];
  attempted: boolean;
  serverIssues: readonly ApiIssue[];
}) {
  const [, studio] = useStudio();
  const mine = issues.filter((i) => i.target.kind === 'prompt');
  const server = serverIssues.filter(
    (i) => /(^|\.)(prompt|negativePrompt)$/.test(i.path) && issueRegionIndex(i) === null,
  );
  const invalid = attempted && (mine.length > 0 || server.length > 0);
  return (
    <section className="section" aria-label="Prompt">
      <h2 className="section-title">Prompt</h2>
      <label className={`field${invalid ? ' invalid' : ''}`}>
        <span>Panel (the whole picture)</span>
        <textarea
          rows={3}
          aria-label="Panel prompt"
          placeholder='e.g. "two friends on a pier at dusk, comic style"'
          value={doc.prompt}
          onChange={(e) => studio.edit((d) => setPrompt(d, e.target.value), 'Edit prompt', 'prompt')}
        />
        {mine.map((i) => (
          <span key={i.message} className={attempted ? 'error-text' : 'hint'}>
            {i.message}
          </span>
        ))}
        {server.map((i) => (
          <span key={i.path} className="error-text">
            {i.message}
          </span>
        ))}
      </label>
      <label className="field" style={{ marginBottom: 0 }}>
        <span>Negative (what to avoid)</span>
        <input
          aria-label="Negative prompt"
          placeholder='e.g. "blurry, extra fingers"'
          value={doc.negativePrompt}
          onChange={(e) =>
            studio.edit((d) => setNegativePrompt(d, e.target.value), 'Edit negative prompt', 'negative')
          }
        />
      </label>
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// Over the canvas: the fix for unclaimed paint, the offer after a linked move

/** The fix for paint no region claims: a free region of that color (then give it a prompt). */
function ClaimColorButton({ color }: { color: string }) {
  const [, studio] = useStudio();
  return (
    <button onClick={() => studio.claimColor(color)} title={`Add a free region of ${color} to the list`}>
      Make it a region
    </button>
  );
}

/** How a region is named in pickers: its cast member, else its prompt, else "free region". */
function regionLabel(region: Region, cast: readonly Subject[]): string {
  const subject = cast.find((s) => s.id === region.subjectId);
  return subject?.name ?? (region.prompt.trim() || 'free region');
}

/**
 * The offer after moving a linked region or skeleton: move the partner by the same amount. Not modal:
 * the next edit drops it.
 */
function LinkedMoveOffer({ doc }: { doc: PanelDocument }) {
  const [state, studio] = useStudio();
  const offer = state.tools.offer;
  if (!offer) return null;
  let text: string;
  if (offer.kind === 'move-skeleton') {
    text = `Person ${offer.person + 1} is linked to this region. Move the skeleton too?`;
  } else {
    const i = doc.regions.findIndex((r) => r.id === offer.regionId);
    if (i < 0) return null;
    text = `Region #${i + 1} (${regionLabel(doc.regions[i], studio.castSubjects)}) is linked to this skeleton. Move it too?`;
  }
  return (
    <div className="linked-offer" role="status" data-testid="linked-offer">
      <span>{text}</span>
      <button className="primary" onClick={() => studio.acceptLinkedMove()}>
        {offer.kind === 'move-skeleton' ? 'Move skeleton' : 'Move region'}
      </button>
      <button className="ghost" title="Leave it where it is" onClick={() => studio.setTools({ offer: null })}>
        Not now
      </button>
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// Right: skeletons

function SkeletonSection({ doc, issues }: { doc: PanelDocument; issues: EditorIssue[] }) {
  const [state, studio] = useStudio();
  const [template, setTemplate] = useState<PoseTemplateName>('standing');
  const [importError, setImportError] = useState<string | null>(null);
  const fileRef = useRef<HTMLInputElement>(null);
  const selected = state.tools.selectedPerson;
  const person = selected !== null ? doc.pose.people[selected] : undefined;
  const warnings = issues.filter((i) => i.target.kind === 'pose');

  const importJson = async (file: File) => {
    try {
      const pose = parseOpenPoseJson(await file.text(), { width: doc.width, height: doc.height });
      const error = studio.edit((d) => setPose(d, pose), 'Import OpenPose JSON');
      setImportError(error);
    } catch (error) {
      setImportError(`${file.name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  return (
    <section className="section" aria-label="Skeletons">
      <h2 className="section-title">Pose</h2>
      {doc.pose.people.length > 0 ? (
        <div className="people" role="group" aria-label="Skeletons">
          {doc.pose.people.map((_, i) => (
            <button
              key={i}
              aria-pressed={selected === i}
              onClick={() => {
                studio.setTools({ selectedPerson: selected === i ? null : i });
                if (state.tools.tool !== 'pose') studio.setTool('pose');
              }}
            >
              Person {i + 1}
            </button>
          ))}
        </div>
      ) : (
        <p className="hint">No skeletons. Add one to pose a character with ControlNet OpenPose.</p>
      )}
      <div className="button-row">
        <select
          aria-label="Pose of the new skeleton"
          value={template}
          onChange={(e) => setTemplate(e.target.value as PoseTemplateName)}
        >
          {POSE_TEMPLATE_NAMES.map((name) => (
            <option key={name} value={name}>
              {name}
            </option>
          ))}
        </select>
        <button
          onClick={() => {
            studio.edit((d) => addSkeleton(d, template), 'Add skeleton');
            studio.setTools({ selectedPerson: doc.pose.people.length });
            studio.setTool('pose');
          }}
        >
          + Add skeleton
        </button>
      </div>
      {person && selected !== null && (
        <>
          <div className="button-row" style={{ marginTop: 6 }}>
            <button
              title="Flip left and right"
              onClick={() =>
                studio.edit((d) => setPose(d, mirrorPerson(d.pose, selected)), 'Mirror skeleton')
              }
            >
              Mirror
            </button>
            <button
              onClick={() => {
                studio.edit((d) => duplicateSkeleton(d, selected), 'Duplicate skeleton');
                studio.setTools({ selectedPerson: doc.pose.people.length });
              }}
            >
              Duplicate
            </button>
            <button
              className="danger"
              onClick={() => {
                studio.edit((d) => removeSkeleton(d, selected), 'Delete skeleton');
                studio.setTools({ selectedPerson: null });
              }}
            >
              Delete
            </button>
          </div>
          <label className="field link-field">
            <span>Linked region</span>
            <select
              aria-label={`Region linked to Person ${selected + 1}`}
              title="Moving a linked skeleton or region offers to move the other by the same amount"
              value={regionOfPerson(doc, selected)?.id ?? ''}
              onChange={(e) => {
                const regionId = e.target.value;
                const current = regionOfPerson(doc, selected);
                if (regionId !== '') {
                  studio.edit((d) => linkSkeleton(d, regionId, selected), 'Link skeleton to region');
                } else if (current) {
                  studio.edit((d) => linkSkeleton(d, current.id, null), 'Unlink skeleton');
                }
              }}
            >
              <option value="">none</option>
              {doc.regions.map((r, i) => (
                <option key={r.id} value={r.id}>
                  #{i + 1} {regionLabel(r, studio.castSubjects)}
                </option>
              ))}
            </select>
          </label>
          <div className="joints" role="group" aria-label="Joints (click to hide an occluded joint)">
            {person.keypoints.map((k, j) => (
              <button
                key={KEYPOINT_NAMES[j]}
                className={`joint${k ? '' : ' hidden'}`}
                title={
                  k
                    ? `Hide the ${jointLabel(j)} (occluded); Alt+click on the canvas does the same`
                    : `Show the ${jointLabel(j)}`
                }
                onClick={() =>
                  studio.edit(
                    (d) => setPose(d, setKeypointVisible(d.pose, selected, j, k === null)),
                    `${k ? 'Hide' : 'Show'} ${jointLabel(j)}`,
                  )
                }
              >
                <i style={{ background: `rgb(${OPENPOSE_COLORS[j].join(',')})` }} />
                {jointLabel(j)}
              </button>
            ))}
          </div>
        </>
      )}
      <div className="button-row" style={{ marginTop: 6 }}>
        <button
          onClick={() => fileRef.current?.click()}
          title="Read skeletons from OpenPose JSON (COCO-18 or BODY_25)"
        >
          Import JSON
        </button>
        <button
          disabled={doc.pose.people.length === 0}
          onClick={() => downloadText('pose.json', JSON.stringify(toOpenPoseJson(doc.pose), null, 2))}
        >
          Export JSON
        </button>
        <input
          ref={fileRef}
          type="file"
          accept=".json,application/json"
          hidden
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) void importJson(file);
            e.target.value = '';
          }}
        />
      </div>
      {importError && <p className="error-text">{importError}</p>}
      {warnings.map((w) => (
        <p key={w.message} className="warning-text">
          {w.message}
        </p>
      ))}
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// Right: settings

function SettingsSection({ doc, issues }: { doc: PanelDocument; issues: EditorIssue[] }) {
  const [state, studio] = useStudio();
  const s = doc.settings;
  const f = state.model?.sizes.vaeScaleFactor ?? 8;
  const schedulers = state.model?.schedulers ?? ['ddim', 'euler', 'euler_a', 'dpmpp_2m', 'dpmpp_2m_karras'];
  const settingIssues = issues.filter((i) => i.target.kind === 'settings');
  const scaffoldColor =
    doc.scaffolding !== null && 'color' in doc.scaffolding ? doc.scaffolding.color : '#808080';
  const set = (patch: Parameters<typeof updateSettings>[1], label: string, key: string) =>
    studio.edit((d) => updateSettings(d, patch), label, `settings:${key}`);
  return (
    <section className="section" aria-label="Settings">
      <details className="settings" open={settingIssues.length > 0 ? true : undefined}>
        <summary className="section-title" style={{ display: 'block' }}>
          Settings{' '}
          <span className="faint" style={{ textTransform: 'none', letterSpacing: 0, fontWeight: 400 }}>
            {s.steps} steps · {SCHEDULER_LABELS[s.scheduler] ?? s.scheduler} · seed{' '}
            {s.seedLocked ? s.seed : 'random'}
          </span>
        </summary>
        <div className="settings-grid">
          <NumberField
            label="Steps"
            value={s.steps}
            min={1}
            max={500}
            integer
            onCommit={(v) => set({ steps: v }, 'Set steps', 'steps')}
            testId="steps"
          />
          <label className="field">
            <span>Scheduler</span>
            <select
              value={s.scheduler}
              onChange={(e) =>
                set({ scheduler: e.target.value as typeof s.scheduler }, 'Set scheduler', 'scheduler')
              }
            >
              {schedulers.map((name) => (
                <option key={name} value={name}>
                  {SCHEDULER_LABELS[name] ?? name}
                </option>
              ))}
            </select>
          </label>
          <NumberField
            label="Guidance"
            value={s.guidanceScale}
            min={0}
            max={30}
            step={0.5}
            onCommit={(v) => set({ guidanceScale: v }, 'Set guidance', 'guidance')}
          />
          <NumberField
            label="Scaffolding steps k"
            title="Steps in which every region develops on its own against the scaffolding (an image or a flat colour; without one the regions share the image from the first step): a count, or a fraction of the steps below 1"
            value={s.scaffoldingSteps}
            min={0}
            step={0.05}
            onCommit={(v) => set({ scaffoldingSteps: v }, 'Set scaffolding steps', 'k')}
          />
          <NumberField
            label="Global diffuser steps g"
            title="First steps driven by the panel prompt alone"
            value={s.globalDiffuserSteps}
            min={0}
            integer
            onCommit={(v) => set({ globalDiffuserSteps: v }, 'Set global diffuser steps', 'g')}
          />
          <NumberField
            label="ControlNet scale"
            value={s.controlnetScale}
            min={0}
            max={2}
            step={0.05}
            onCommit={(v) => set({ controlnetScale: v }, 'Set ControlNet scale', 'controlnet')}
          />
          <NumberField
            label="SAL weight"
            title={
              state.model?.hasSegmentation === false
                ? 'The model has no segmentation model, so SAL is unavailable'
                : 'Subject-aware segmentation guidance; 0 is off'
            }
            value={s.sal.weight}
            min={0}
            max={10}
            step={0.1}
            onCommit={(v) => set({ sal: { weight: v } }, 'Set SAL weight', 'sal')}
          />
          <div className="field">
            <span>Seed</span>
            <div className="seed-row">
              <input
                type="number"
                aria-label="Seed"
                value={s.seed ?? ''}
                placeholder="random"
                disabled={!s.seedLocked}
                onChange={(e) => {
                  const v = Number(e.target.value);
                  if (e.target.value !== '' && Number.isInteger(v) && v >= 0)
                    set({ seed: v }, 'Set seed', 'seed');
                }}
              />
              <button
                aria-pressed={s.seedLocked}
                title={
                  s.seedLocked ? 'Unlock: every render draws a new seed' : 'Lock: renders reuse this seed'
                }
                onClick={() => studio.setSeedLocked(!s.seedLocked)}
              >
                {s.seedLocked ? 'Locked' : 'Lock'}
              </button>
              <button title="A new random seed (locked)" onClick={() => studio.randomizeSeed()}>
                New
              </button>
            </div>
          </div>
          <NumberField
            label="Width"
            value={doc.width}
            min={f}
            max={2048}
            step={f}
            integer
            title={`Multiples of ${f}`}
            onCommit={(v) => studio.edit((d) => resizePanel(d, v, d.height), 'Resize panel', 'size')}
          />
          <NumberField
            label="Height"
            value={doc.height}
            min={f}
            max={2048}
            step={f}
            integer
            title={`Multiples of ${f}`}
            onCommit={(v) => studio.edit((d) => resizePanel(d, d.width, v), 'Resize panel', 'size')}
          />
          <div className="field wide">
            <span>Scaffolding</span>
            <div className="button-row">
              <span className="muted">
                {doc.scaffolding === null
                  ? 'None: regions develop on the shared image'
                  : 'image' in doc.scaffolding
                    ? 'An earlier render'
                    : `Flat ${doc.scaffolding.color}`}
              </span>
              <span
                className="swatch"
                style={{ background: scaffoldColor }}
                title="Flat scaffolding colour: the regions develop against it in the scaffolding stage — click to choose"
              >
                <input
                  type="color"
                  aria-label="Scaffolding colour"
                  value={scaffoldColor}
                  onChange={(e) =>
                    studio.edit(
                      (d) => setScaffolding(d, { color: e.target.value }),
                      'Set scaffolding colour',
                      'scaffolding-color',
                    )
                  }
                />
              </span>
              {doc.scaffolding !== null && (
                <button
                  className="ghost"
                  onClick={() => studio.edit((d) => setScaffolding(d, null), 'Clear scaffolding')}
                >
                  Clear
                </button>
              )}
            </div>
          </div>
          {settingIssues.map((i) => (
            <span key={i.message} className="error-text wide">
              {i.message}
            </span>
          ))}
        </div>
      </details>
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// Bottom: history and render

function RenderBar({
  doc,
  renders,
  shown,
  renderState,
}: {
  doc: PanelDocument;
  renders: readonly Render[];
  shown: Render | null;
  renderState: RenderState;
}) {
  const [state, studio] = useStudio();
  const [copied, setCopied] = useState(false);
  const [location, setLocation] = useState<{ renderId: string; kind: 'info' | 'error'; text: string } | null>(
    null,
  );
  const panelId = state.panelId;
  const job = renderState.job;
  const active = job !== null && (job.state === 'queued' || job.state === 'running');
  const progress = job?.progress;
  const fraction = progress && progress.totalSteps > 0 ? progress.step / progress.totalSteps : 0;
  const left =
    progress && progress.elapsedMs !== undefined && progress.step > 0
      ? (progress.elapsedMs / progress.step) * (progress.totalSteps - progress.step)
      : null;
  const isScaffold =
    shown !== null &&
    doc.scaffolding !== null &&
    'image' in doc.scaffolding &&
    doc.scaffolding.image.hash === shown.image.hash;
  return (
    <footer className="renderbar" aria-label="Render">
      <div className="history">
        <h2
          className="section-title"
          style={{ margin: 0, writingMode: 'vertical-rl', transform: 'rotate(180deg)' }}
        >
          History
        </h2>
        {renders.length === 0 ? (
          <p className="hint">Renders of this panel land here, newest first, each with its seed.</p>
        ) : (
          <div className="history-strip" role="list" aria-label="Render history" data-testid="history">
            {renders.map((r) => (
              <button
                key={r.id}
                role="listitem"
                className="thumb"
                aria-pressed={shown?.id === r.id}
                title={`Seed ${r.seed} · ${r.request.steps} steps · ${(r.durationMs / 1000).toFixed(1)} s`}
                onClick={() => panelId && studio.showRender(panelId, r.id)}
                data-testid="history-thumb"
              >
                <img src={r.image.url} alt={`Render with seed ${r.seed}`} />
                <span className="seed">{r.seed}</span>
              </button>
            ))}
          </div>
        )}
        {shown && (
          <div className="history-actions">
            <span className="muted">
              Seed {shown.seed} · {shown.request.width}×{shown.request.height}
              {shown.warnings.length > 0 && (
                <span className="warning-text" title={shown.warnings.join('\n')}>
                  {' '}
                  · {shown.warnings.length} note(s)
                </span>
              )}
            </span>
            <div className="button-row">
              <button
                disabled={isScaffold}
                title="Regions develop against this image in the scaffolding stage"
                onClick={() => studio.useAsScaffold(shown)}
              >
                {isScaffold ? 'Scaffold in use' : 'Use as scaffold'}
              </button>
              <button
                title="Prompts, settings and seed of this render"
                onClick={() => studio.reuseSettings(shown)}
              >
                Reuse settings
              </button>
              <button
                onClick={() => {
                  void navigator.clipboard?.writeText(String(shown.seed)).then(() => {
                    setCopied(true);
                    setTimeout(() => setCopied(false), 1200);
                  });
                }}
              >
                {copied ? 'Copied' : 'Copy seed'}
              </button>
              <button
                title="Open the PNG (it carries the request in its text chunks)"
                onClick={() => window.open(shown.image.url, '_blank', 'noopener')}
              >
                Open image
              </button>
              <button
                title="Save a copy named after the panel and seed, and show where it is"
                onClick={() => {
                  const renderId = shown.id;
                  studio.revealRender(shown).then(
                    ({ path, shown: opened }) =>
                      setLocation({
                        renderId,
                        kind: 'info',
                        text: opened ? `Shown in your file manager: ${path}` : `Saved as ${path}`,
                      }),
                    (error: unknown) => setLocation({ renderId, kind: 'error', text: errorMessage(error) }),
                  );
                }}
              >
                Open file location
              </button>
            </div>
            {location?.renderId === shown.id && (
              <p
                className={location.kind === 'error' ? 'error-text' : 'muted'}
                role={location.kind === 'error' ? 'alert' : 'status'}
                data-testid="render-location"
                style={{ margin: 0, userSelect: 'text', overflowWrap: 'anywhere' }}
              >
                {location.text}
              </p>
            )}
          </div>
        )}
      </div>
      <div className="render-controls">
        <div className="row">
          {active && (
            <div className="progress" data-testid="progress" aria-live="polite">
              <div
                className="progress-track"
                role="progressbar"
                aria-valuemin={0}
                aria-valuemax={100}
                aria-valuenow={Math.round(fraction * 100)}
              >
                <div className="progress-fill" style={{ width: `${Math.round(fraction * 100)}%` }} />
              </div>
              <span data-testid="progress-text">
                {job.state === 'queued'
                  ? 'Queued…'
                  : `Step ${progress?.step ?? 0}/${progress?.totalSteps ?? 0} · ${progress?.stage ?? ''}${left !== null ? ` · ${Math.ceil(left / 1000)} s left` : ''}`}
              </span>
              <button className="ghost" title="Cancel the render" onClick={() => void studio.cancelRender()}>
                ✕ Cancel
              </button>
            </div>
          )}
          {!active && job?.state === 'cancelled' && <span className="faint">Cancelled</span>}
          <button
            className="primary render-button"
            disabled={active}
            onClick={() => void studio.render()}
            data-testid="render"
          >
            Render<kbd>Ctrl+Enter</kbd>
          </button>
        </div>
        {renderState.error && (
          <div className="error-text render-error" role="alert" data-testid="render-error">
            {renderState.error}
            {renderState.issues
              .filter((i) => issueRegionIndex(i) === null && !/(^|\.)(prompt|negativePrompt)$/.test(i.path))
              .map((i) => (
                <div key={i.path + i.message}>
                  {i.path}: {i.message}
                </div>
              ))}
          </div>
        )}
      </div>
    </footer>
  );
}
