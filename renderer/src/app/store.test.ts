/**
 * The store's storyboard sync when the story changed elsewhere and this window has not heard of it
 * (no events reach it here): the server refuses the reorder, the store follows the server's panels
 * and tries once more. The end-to-end tests drive the same store against the real service, where
 * events usually arrive first, so this path needs its own test.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import type { Id, Panel, Story, StudioClient } from '../../../electron/api/contract';
import { Studio } from './store';

beforeAll(() => {
  // the store remembers the last story in localStorage; Node has none
  const items = new Map<string, string>();
  (globalThis as { localStorage?: unknown }).localStorage ??= {
    getItem: (key: string) => items.get(key) ?? null,
    setItem: (key: string, value: string) => void items.set(key, value),
    removeItem: (key: string) => void items.delete(key),
  };
});

/**
 * One story's panels as the service keeps them: reorder must list exactly the live panels (the
 * service's refusal otherwise), delete/restore keep a panel's place. Changes made "elsewhere" go
 * straight to the arrays; the store is told nothing.
 */
class StoryServer {
  readonly storyId = 'story-1';
  order: Id[] = [];
  private readonly removed = new Map<Id, number>();
  private nextId = 1;
  deleted: string | null = null;

  add(): Id {
    const id = `panel-${this.nextId++}`;
    this.order.push(id);
    return id;
  }

  private story(): Story {
    if (this.deleted) throw new ApiError({ code: 'not_found', message: this.deleted });
    return {
      id: this.storyId,
      title: 'The Lighthouse',
      castId: null,
      panelIds: [...this.order],
      createdAt: '',
      updatedAt: '',
    };
  }

  private panel(id: Id): Panel {
    return {
      id,
      storyId: this.storyId,
      title: id,
      request: {} as Panel['request'],
      renders: [],
      createdAt: '',
      updatedAt: '',
    };
  }

  readonly api = {
    stories: { get: async () => this.story() },
    pages: { list: async () => [] },
    panels: {
      list: async () => this.order.map((id) => this.panel(id)),
      get: async ({ id }: { id: Id }) => this.panel(id),
      delete: async ({ id }: { id: Id }) => {
        this.removed.set(id, this.order.indexOf(id));
        this.order = this.order.filter((p) => p !== id);
      },
      restore: async ({ id }: { id: Id }) => {
        this.order.splice(this.removed.get(id) ?? this.order.length, 0, id);
        return this.panel(id);
      },
      reorder: async ({ panelIds }: { panelIds: Id[] }) => {
        const story = this.story();
        if ([...panelIds].sort().join() !== [...this.order].sort().join()) {
          throw new ApiError({
            code: 'invalid_input',
            message: 'panels.reorder: panelIds: must list each panel of the story once',
          });
        }
        this.order = [...panelIds];
        return { ...story, panelIds: [...panelIds] };
      },
    },
  } as unknown as StudioClient;
}

async function storyboard() {
  const server = new StoryServer();
  const [a, b, c] = [server.add(), server.add(), server.add()];
  const studio = new Studio(server.api);
  await studio.selectStory(server.storyId);
  return { server, studio, a, b, c };
}

describe('the storyboard follows a story changed elsewhere', () => {
  it('a reorder refused for a panel deleted elsewhere drops it from every board state and goes through', async () => {
    const { server, studio, a, b, c } = await storyboard();
    server.order = [a, c]; // deleted in another window
    studio.movePanel(2, 0); // C first: asks for [C, A, B], which the server refuses
    await expect.poll(() => server.order).toEqual([c, a]);
    expect(studio.state.board.present.order).toEqual([c, a]);
    expect(studio.state.boardError).toBeNull();
    // undo moves C back and brings no ghost of B
    studio.undoBoard();
    await expect.poll(() => server.order).toEqual([a, c]);
    expect(studio.state.board.present.order).toEqual([a, c]);
    expect(studio.state.boardError).toBeNull();
    expect(studio.state.board.present.order).not.toContain(b);
  });

  it('a panel added elsewhere joins every board state at the end; undo keeps it', async () => {
    const { server, studio, a, b, c } = await storyboard();
    const d = server.add(); // added in another window
    studio.movePanel(0, 2); // A last: [B, C, A] lacks D, so the server refuses it
    await expect.poll(() => server.order).toEqual([b, c, a, d]);
    expect(studio.state.board.present.order).toEqual([b, c, a, d]);
    studio.undoBoard();
    await expect.poll(() => server.order).toEqual([a, b, c, d]);
    expect(studio.state.boardError).toBeNull();
  });

  it('a panel this window deleted stays undoable while one deleted elsewhere does not come back', async () => {
    const { server, studio, a, b, c } = await storyboard();
    studio.deletePanel(a);
    await expect.poll(() => server.order).toEqual([b, c]);
    server.order = [b]; // C deleted elsewhere
    studio.movePanel(1, 0); // [C, B] is refused: C is gone
    await expect.poll(() => studio.state.board.present.order).toEqual([b]);
    // the move had nothing left to move, so it left no undo step: one undo brings A back
    studio.undoBoard();
    await expect.poll(() => server.order).toEqual([a, b]);
    expect(studio.state.board.present.order).toEqual([a, b]);
  });

  it('says why when the retry cannot help', async () => {
    const { server, studio } = await storyboard();
    server.deleted = 'id: story story-1 does not exist';
    studio.movePanel(2, 0);
    await expect.poll(() => studio.state.boardError).toBe('id: story story-1 does not exist');
  });
});
