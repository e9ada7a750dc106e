import type { Subject } from '../../../electron/api/contract';
import { useStudio } from '../app/useStudio';
import type { PanelDocument } from '../editor/document';

/** A subject's picture (its first reference image) or its initial. */
export function Avatar({ subject, ring }: { subject: Subject; ring?: string }) {
  const image = subject.referenceImages[0];
  return (
    <span className="avatar" style={ring ? { borderColor: ring } : undefined} aria-hidden="true">
      {image ? <img src={image.url} alt="" /> : subject.name.slice(0, 1).toUpperCase()}
    </span>
  );
}

/**
 * The story's cast, always in view while composing. In the panel editor a click picks the member's
 * region (its color ring shows which one).
 */
export function CastSection({ doc }: { doc?: PanelDocument }) {
  const [state, studio] = useStudio();
  const members = studio.castSubjects;
  const story = studio.story;
  const activeRegion = doc?.regions.find((r) => r.id === state.tools.activeRegionId);
  return (
    <section className="section" aria-label="Cast">
      <h2 className="section-title">Cast</h2>
      {members.length === 0 && (
        <p className="hint">
          {story?.castId
            ? "This story's cast has nobody yet."
            : 'No cast yet. Add the characters and objects of this story in the Library.'}
        </p>
      )}
      <ul className="cast-list">
        {members.map((subject) => {
          const region = doc?.regions.find((r) => r.subjectId === subject.id);
          const active = region !== undefined && region.id === activeRegion?.id;
          return (
            <li key={subject.id}>
              <button
                className={`cast-member${active ? ' active' : ''}`}
                disabled={!doc}
                title={
                  doc ? `Paint ${subject.name} (picks the region bound to ${subject.name})` : subject.name
                }
                onClick={() => studio.pickSubject(subject.id)}
              >
                <Avatar subject={subject} ring={region?.color} />
                <span className="who">
                  <span>{subject.name}</span>
                  <small>
                    {subject.token} {subject.classNoun}
                  </small>
                </span>
              </button>
            </li>
          );
        })}
      </ul>
      <button className="ghost" style={{ marginTop: 6 }} onClick={() => studio.go('library')}>
        + add
      </button>
    </section>
  );
}
