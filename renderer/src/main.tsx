import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { connectStudio } from './api/client';
import { Studio } from './app/store';
import { StudioContext } from './app/useStudio';
import './styles.css';

const root = document.getElementById('root');
if (!root) throw new Error('index.html lacks <div id="root">');

const { api } = connectStudio();
const studio = new Studio(api);
void studio.start();

createRoot(root).render(
  <StrictMode>
    <StudioContext.Provider value={studio}>
      <App />
    </StudioContext.Provider>
  </StrictMode>,
);
