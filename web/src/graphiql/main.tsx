import { GraphiQL } from 'graphiql';
import 'graphiql/graphiql.css';
import { createRoot } from 'react-dom/client';
import { bearer, loadApiKey } from '../shared/apiKey';
import { fetcher } from './fetcher';
import './graphiql.css';
import { tourTabs } from './tabs';

window.__bulkwatchStarted = true;

// Signed in on the dashboard (same tab)? Start with that key in Headers.
const key = loadApiKey();
const headers = key ? JSON.stringify({ Authorization: bearer(key) }, null, 2) : '';

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <GraphiQL fetcher={fetcher} defaultTabs={tourTabs(headers)} defaultHeaders={headers} defaultEditorToolsVisibility="headers">
      <GraphiQL.Logo>
        <a className="bw-graphiql-home" href="/" title="Back to the dashboard">
          bulkwatch
        </a>{' '}
        GraphiQL
      </GraphiQL.Logo>
    </GraphiQL>,
  );
}
