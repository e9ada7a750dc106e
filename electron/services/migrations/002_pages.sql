-- MSP Studio schema, version 2: comic pages. A story has pages in reading order; a page has a layout
-- template, a page size and print resolution, gutter and margin (millimetres), panels placed in the
-- template's slots, and lettering (captions and speech balloons). Pages are soft-deleted like panels.

CREATE TABLE pages (
  id          TEXT PRIMARY KEY,
  story_id    TEXT NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
  -- Reading order among the story's live pages (0, 1, 2, ...); a deleted page keeps the index it had.
  position    INTEGER NOT NULL,
  -- A template id of common/pages/layout.ts (single, two-tiers, three-tiers, grid-2x2, grid-3x2, splash-2).
  template    TEXT NOT NULL,
  -- a4, letter or comic.
  page_size   TEXT NOT NULL,
  dpi         INTEGER NOT NULL CHECK (dpi > 0),
  gutter_mm   REAL NOT NULL CHECK (gutter_mm >= 0),
  margin_mm   REAL NOT NULL CHECK (margin_mm >= 0),
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  deleted_at  TEXT
);
CREATE INDEX pages_story_position ON pages (story_id, position);

-- The panel shown in a slot (slots are numbered in reading order from 0); an empty slot has no row.
CREATE TABLE page_slots (
  page_id     TEXT NOT NULL REFERENCES pages (id) ON DELETE CASCADE,
  slot        INTEGER NOT NULL CHECK (slot >= 0),
  panel_id    TEXT NOT NULL REFERENCES panels (id) ON DELETE CASCADE,
  PRIMARY KEY (page_id, slot)
);
CREATE INDEX page_slots_panel ON page_slots (panel_id);

-- Captions and speech balloons. Boxes and tails are fractions of the page's width and height.
CREATE TABLE page_lettering (
  page_id      TEXT NOT NULL REFERENCES pages (id) ON DELETE CASCADE,
  id           TEXT NOT NULL,
  -- Stacking order: later entries are drawn over earlier ones.
  position     INTEGER NOT NULL,
  kind         TEXT NOT NULL CHECK (kind IN ('caption', 'speech')),
  x            REAL NOT NULL,
  y            REAL NOT NULL,
  width        REAL NOT NULL CHECK (width > 0),
  height       REAL NOT NULL CHECK (height > 0),
  -- Where a speech balloon's tail points; NULL for captions and balloons without a tail.
  tail_x       REAL,
  tail_y       REAL,
  text         TEXT NOT NULL,
  font_size_pt REAL NOT NULL CHECK (font_size_pt > 0),
  PRIMARY KEY (page_id, id)
);
