interface Props {
  url: string;
  secret: string;
  onDismiss: () => void;
}

/** The signing secret, shown once after creation or rotation. */
export function SecretNotice({ url, secret, onDismiss }: Props) {
  return (
    <div className="alert alert-ok secret-notice" role="status">
      <p>
        The signing secret of <strong className="break">{url}</strong>. Copy it now: it is not shown again.
      </p>
      <code className="secret" aria-label="Signing secret" tabIndex={0}>
        {secret}
      </code>
      <button type="button" className="btn btn-small" onClick={onDismiss}>
        I have copied it
      </button>
    </div>
  );
}
