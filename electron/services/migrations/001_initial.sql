-- MSP Studio schema, version 1: the file index, the subject library and projects, jobs.
-- Timestamps are ISO 8601 UTC text. Rows are soft-deleted (deleted_at) so that deletes can be undone.

-- Content-addressed files (the bytes live under <dataDir>/files/ab/cdef...).
CREATE TABLE files (
  hash        TEXT PRIMARY KEY CHECK (length(hash) = 64),
  media_type  TEXT NOT NULL,
  size        INTEGER NOT NULL CHECK (size >= 0),
  width       INTEGER,
  height      INTEGER,
  -- 1 for render previews: removed when the studio starts again.
  transient   INTEGER NOT NULL DEFAULT 0 CHECK (transient IN (0, 1)),
  created_at  TEXT NOT NULL
);

CREATE TABLE subjects (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  token       TEXT NOT NULL,
  class_noun  TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  deleted_at  TEXT
);
CREATE INDEX subjects_token ON subjects (token) WHERE deleted_at IS NULL;

CREATE TABLE subject_images (
  subject_id  TEXT NOT NULL REFERENCES subjects (id) ON DELETE CASCADE,
  hash        TEXT NOT NULL REFERENCES files (hash),
  position    INTEGER NOT NULL,
  PRIMARY KEY (subject_id, hash)
);

CREATE TABLE casts (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  deleted_at  TEXT
);

CREATE TABLE cast_members (
  cast_id     TEXT NOT NULL REFERENCES casts (id) ON DELETE CASCADE,
  subject_id  TEXT NOT NULL REFERENCES subjects (id) ON DELETE CASCADE,
  position    INTEGER NOT NULL,
  PRIMARY KEY (cast_id, subject_id)
);

CREATE TABLE stories (
  id          TEXT PRIMARY KEY,
  title       TEXT NOT NULL,
  cast_id     TEXT REFERENCES casts (id) ON DELETE SET NULL,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  deleted_at  TEXT
);

CREATE TABLE panels (
  id          TEXT PRIMARY KEY,
  story_id    TEXT NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
  -- Reading order among the story's live panels (0, 1, 2, ...); a deleted panel keeps the index it had.
  position    INTEGER NOT NULL,
  title       TEXT NOT NULL,
  -- The panel's request as JSON (PanelRequest with files as {"hash": ...}).
  request     TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  deleted_at  TEXT
);
CREATE INDEX panels_story_position ON panels (story_id, position);

CREATE TABLE jobs (
  id          TEXT PRIMARY KEY,
  kind        TEXT NOT NULL,
  state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'finished', 'failed', 'cancelled')),
  panel_id    TEXT REFERENCES panels (id) ON DELETE SET NULL,
  -- What the job needs to run (JSON), so queued jobs survive a restart.
  input       TEXT NOT NULL,
  progress    TEXT NOT NULL,
  error       TEXT,
  -- What a finished job produced (JSON), e.g. {"renderId": ...}.
  result      TEXT,
  preview     TEXT,
  created_at  TEXT NOT NULL,
  started_at  TEXT,
  finished_at TEXT
);
CREATE INDEX jobs_state ON jobs (state);
CREATE INDEX jobs_panel ON jobs (panel_id);

CREATE TABLE renders (
  id            TEXT PRIMARY KEY,
  panel_id      TEXT NOT NULL REFERENCES panels (id) ON DELETE CASCADE,
  job_id        TEXT NOT NULL,
  seed          INTEGER NOT NULL,
  image_hash    TEXT NOT NULL REFERENCES files (hash),
  -- The rendered GenerationRequest JSON and the editor state (PanelRequest JSON) at render time.
  request       TEXT NOT NULL,
  panel_request TEXT NOT NULL,
  model_name    TEXT NOT NULL,
  duration_ms   INTEGER NOT NULL,
  warnings      TEXT NOT NULL,
  created_at    TEXT NOT NULL,
  deleted_at    TEXT
);
CREATE INDEX renders_panel ON renders (panel_id, created_at);
