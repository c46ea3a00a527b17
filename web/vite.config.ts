import { resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';

// The server under development; the built pages are served by the binary itself.
const target = process.env.BULKWATCH_URL ?? 'http://127.0.0.1:8080';

const SANS = 'system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif';
const MONO = 'ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace';

/**
 * GraphiQL's stylesheet embeds Roboto and Fira Code as base64 (about 400 kB);
 * the pages use the system fonts instead, like the dashboard.
 */
function systemFontsForGraphiQL(): Plugin {
  return {
    name: 'bulkwatch:graphiql-system-fonts',
    enforce: 'pre',
    transform(code, id) {
      if (!/[\\/]graphiql[\\/]dist[\\/]style\.css$/.test(id)) return null;
      return code
        .replace(/@font-face\{[^}]*\}/g, '')
        .replace(/"Roboto",\s*sans-serif/g, SANS)
        .replace(/"Fira Code",\s*monospace/g, MONO);
    },
  };
}

export default defineConfig({
  base: '/',
  plugins: [systemFontsForGraphiQL()],
  esbuild: { jsx: 'automatic' },
  server: {
    proxy: {
      '/graphql': { target, ws: true, changeOrigin: true },
      '/reports': { target, changeOrigin: true },
      '/exports': { target, changeOrigin: true },
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // dist/ is committed and embedded: no maps, and content-hashed names
    // so that a rebuild from the same source is byte-identical.
    sourcemap: false,
    target: 'es2020',
    chunkSizeWarningLimit: 2500,
    rollupOptions: {
      onwarn(warning, warn) {
        // Radix (inside GraphiQL) marks modules "use client"; meaningless here.
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
      input: {
        index: resolve(import.meta.dirname, 'index.html'),
        graphiql: resolve(import.meta.dirname, 'graphiql.html'),
      },
      output: {
        // React serves both pages: one shared, named chunk.
        manualChunks: (id) =>
          /[\\/]node_modules[\\/](react|react-dom|scheduler)[\\/]/.test(id) ? 'vendor' : undefined,
      },
    },
  },
});
