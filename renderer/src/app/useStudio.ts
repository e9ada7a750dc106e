import { createContext, useContext, useSyncExternalStore } from 'react';
import type { Studio, StudioState } from './store';

export const StudioContext = createContext<Studio | null>(null);

/** The studio (actions). */
export function useStudioActions(): Studio {
  const studio = useContext(StudioContext);
  if (!studio) throw new Error('useStudio must be used inside <StudioContext.Provider>');
  return studio;
}

/** The studio state; re-renders when it changes. */
export function useStudio(): [StudioState, Studio] {
  const studio = useStudioActions();
  const state = useSyncExternalStore(studio.subscribe, studio.getSnapshot);
  return [state, studio];
}
