-- MSP Studio schema, version 4: cast training. A training teaches a cast's subjects to a copy of the
-- active model (the variant folder under <dataDir>/models/); it runs as jobs (a start, then resumes
-- after a cancel or a crash, all continuing from the checkpoints in its work folder). Its loss curve,
-- sample pictures and the cut-outs it trained on are kept so the Training screen can show them again.
-- A finished training registers its folder as a model tied to the cast.

ALTER TABLE model_folders ADD COLUMN cast_id TEXT REFERENCES casts (id) ON DELETE SET NULL;

CREATE TABLE cast_trainings (
  id              TEXT PRIMARY KEY,
  cast_id         TEXT NOT NULL REFERENCES casts (id) ON DELETE CASCADE,
  -- The latest job of the training (the start, or the last resume).
  job_id          TEXT NOT NULL,
  -- TrainingSettings (JSON).
  settings        TEXT NOT NULL,
  -- The subjects as trained (JSON): subjectId, name, identifier, classNoun, image hashes.
  subjects        TEXT NOT NULL,
  base_model_dir  TEXT NOT NULL,
  base_model_name TEXT NOT NULL,
  -- Checkpoints (kept until the training completes) and the variant folder it writes.
  work_dir        TEXT NOT NULL,
  out_dir         TEXT NOT NULL,
  -- The latest TrainingProgress (JSON), or NULL.
  progress        TEXT,
  -- Cut-outs and augmented samples (JSON list of {kind, subjectId, method, caption, hash}).
  samples         TEXT NOT NULL DEFAULT '[]',
  model_id        TEXT REFERENCES model_folders (id) ON DELETE SET NULL,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL
);
CREATE INDEX cast_trainings_cast ON cast_trainings (cast_id, created_at);

-- The loss curve: one row per step and phase (a resume replaces the steps after its checkpoint).
CREATE TABLE training_losses (
  training_id TEXT NOT NULL REFERENCES cast_trainings (id) ON DELETE CASCADE,
  phase       TEXT NOT NULL CHECK (phase IN ('unet', 'segmentation')),
  step        INTEGER NOT NULL CHECK (step >= 0),
  loss        REAL NOT NULL,
  PRIMARY KEY (training_id, phase, step)
);

-- Sample pictures: one per subject at each preview step.
CREATE TABLE training_previews (
  training_id TEXT NOT NULL REFERENCES cast_trainings (id) ON DELETE CASCADE,
  step        INTEGER NOT NULL CHECK (step >= 0),
  position    INTEGER NOT NULL CHECK (position >= 0),
  subject_id  TEXT,
  identifier  TEXT NOT NULL,
  prompt      TEXT NOT NULL,
  hash        TEXT NOT NULL REFERENCES files (hash),
  PRIMARY KEY (training_id, step, position)
);
