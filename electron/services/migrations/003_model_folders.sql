-- MSP Studio schema, version 3: model folders the user imported (validated by the model contract when
-- imported; the files stay where they are and are never deleted), and app settings such as the
-- active model.

CREATE TABLE model_folders (
  id          TEXT PRIMARY KEY,
  -- The absolute folder path as imported.
  path        TEXT NOT NULL UNIQUE,
  name        TEXT NOT NULL,
  -- What validation found (JSON): sizes and optional components.
  info        TEXT NOT NULL,
  created_at  TEXT NOT NULL
);

-- Key/value settings, e.g. active_model = "default" or a model_folders id.
CREATE TABLE settings (
  key         TEXT PRIMARY KEY,
  value       TEXT NOT NULL
);
