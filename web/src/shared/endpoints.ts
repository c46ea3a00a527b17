// Same origin as the page: the server serves the pages, /graphql and its socket.
export const GRAPHQL_PATH = '/graphql';

export function graphqlWsUrl(): string {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${window.location.host}${GRAPHQL_PATH}`;
}
