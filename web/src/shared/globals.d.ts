interface Window {
  /** Set once a page's script runs; the inline boot guard in the HTML reads it. */
  __bulkwatchStarted?: boolean;
}
