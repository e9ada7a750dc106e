import type { ToolId } from '../editor/tools';

/** Line icons for the tools, drawn in the current text color. */
export function ToolIcon({ tool }: { tool: ToolId }) {
  const common = {
    viewBox: '0 0 24 24',
    fill: 'none',
    stroke: 'currentColor',
    strokeWidth: 1.8,
    strokeLinecap: 'round' as const,
    strokeLinejoin: 'round' as const,
    'aria-hidden': true,
  };
  switch (tool) {
    case 'brush':
      return (
        <svg {...common}>
          <path d="M14 4l6 6-8.5 8.5a3 3 0 0 1-2 .9L6 19.5l.1-3.5a3 3 0 0 1 .9-2z" />
          <path d="M12.5 5.5l6 6" />
        </svg>
      );
    case 'eraser':
      return (
        <svg {...common}>
          <path d="M4 15l9-9a2 2 0 0 1 2.8 0l3.2 3.2a2 2 0 0 1 0 2.8L12 19H8z" />
          <path d="M8.5 10.5l5 5M12 19h8" />
        </svg>
      );
    case 'rectangle':
      return (
        <svg {...common}>
          <rect x="4.5" y="6" width="15" height="12" rx="1" />
        </svg>
      );
    case 'lasso':
      return (
        <svg {...common}>
          <path d="M6 15c-2-2-2-5 1-7s9-3 11 0-1 7-6 7c-2 0-3.5-.3-4.6-.8" />
          <path d="M7.4 14.2c-1.5 1-1.3 3 .6 3.3 1.2.2 1.7 1.3 1 2.5" />
        </svg>
      );
    case 'fill':
      return (
        <svg {...common}>
          <path d="M5 11l6-6 7 7-6 6a2 2 0 0 1-2.8 0L5 13.8a2 2 0 0 1 0-2.8z" />
          <path d="M5 12h13M19.5 15.5s1.5 2 1.5 3a1.5 1.5 0 0 1-3 0c0-1 1.5-3 1.5-3z" />
        </svg>
      );
    case 'move':
      return (
        <svg {...common}>
          <path d="M12 3v18M3 12h18" />
          <path d="M9 6l3-3 3 3M9 18l3 3 3-3M6 9l-3 3 3 3M18 9l3 3-3 3" />
        </svg>
      );
    case 'pose':
      return (
        <svg {...common}>
          <circle cx="12" cy="4.5" r="1.8" />
          <path d="M12 7v6M7 9.5l5-1.5 5 1.5M9 20l3-7 3 7" />
          <circle cx="7" cy="9.5" r="1" fill="currentColor" />
          <circle cx="17" cy="9.5" r="1" fill="currentColor" />
        </svg>
      );
  }
}
