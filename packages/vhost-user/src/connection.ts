import { Errno, strerror } from '@blockwork/core';
import { vhostUserError } from './errors';
import { isSyscallError, type NativeConnection, type NativeListener, vhostUserNative } from './native';
import { VHOST_USER_HEADER_SIZE, VHOST_USER_MAX_FDS } from './protocol';

/** One complete message. `payload` is a copy owned by the receiver; so are `fds` (close them when done). */
export interface VhostUserMessage {
  request: number;
  flags: number;
  payload: Buffer;
  fds: number[];
}

/** sockaddr_un.sun_path holds 108 bytes including the NUL. */
const MAX_PATH_BYTES = 107;

function checkPath(path: string): void {
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) {
    throw vhostUserError('VHOST_USER_SOCKET_PATH', `socket path ${path} is ${Buffer.byteLength(path)} bytes, more than ${MAX_PATH_BYTES}`);
  }
}

/**
 * A connected vhost-user socket: 12-byte header {request u32, flags u32, size u32 (payload bytes)}
 * + payload, with up to 8 fds per message via SCM_RIGHTS. Reads are driven by Node's loop; partial
 * reads are reassembled. While open, the socket keeps the process alive (see `setRef`).
 */
export class VhostUserConnection {
  /** Called once per complete message, in order. Replace before the first message can arrive. */
  onMessage: (msg: VhostUserMessage) => void = () => {};
  /**
   * Called once when the peer closed (no argument) or on a framing error (payload size above
   * 4096, a message cut short by EOF, more than 8 fds) or socket error (a VHOST_USER_FRAMING error).
   * The connection is closed by then. Not called after a local `close()`.
   */
  onClose: (err?: Error) => void = () => {};
  private n: NativeConnection | null;

  /**
   * Connects to a listening vhost-user socket (a back end) without blocking the event loop: a full
   * listen backlog (EAGAIN) is retried every 5 ms for up to `backlogWaitMs`. Rejects with
   * VHOST_USER_CONNECT_FAILED carrying the errno (ENOENT, ECONNREFUSED, EAGAIN after the wait...).
   */
  static async connect(path: string, backlogWaitMs = 1000): Promise<VhostUserConnection> {
    const deadline = Date.now() + backlogWaitMs;
    for (;;) {
      const r = VhostUserConnection.tryConnect(path);
      if (typeof r !== 'number') return r;
      if (r !== Errno.EAGAIN || Date.now() >= deadline) {
        throw vhostUserError('VHOST_USER_CONNECT_FAILED', `cannot connect to vhost-user socket ${path}: ${strerror(r)}${r === Errno.EAGAIN ? ` (listen backlog still full after ${backlogWaitMs} ms)` : ''}`, { errno: r });
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /**
   * One non-blocking connect attempt, for callers that retry (a back end in client mode): the
   * connection, or the errno (positive) of an expected failure — ENOENT or ECONNREFUSED (nothing
   * listening), EAGAIN (the listener's backlog is full). Never blocks: on a Unix socket the
   * connection is queued in the listener's backlog and counts as connected even before the peer
   * accepts it; its first message arrives then. Throws VHOST_USER_SOCKET_PATH for a path that
   * cannot fit.
   */
  static tryConnect(path: string): VhostUserConnection | number {
    checkPath(path);
    const fd = vhostUserNative().connectNonBlocking(path);
    return fd < 0 ? -fd : new VhostUserConnection(fd);
  }

  /** Wraps a connected non-blocking stream socket and takes ownership of `fd`. */
  constructor(fd: number) {
    this.n = new (vhostUserNative().Connection)(
      fd,
      (request, flags, payload, fds) => this.onMessage({ request, flags, payload, fds }),
      (errno, reason) => {
        this.n = null;
        this.onClose(errno === 0 ? undefined : vhostUserError('VHOST_USER_FRAMING', `vhost-user connection closed: ${reason}`, { errno }));
      },
    );
  }

  /** False once closed by either side. */
  get isOpen(): boolean {
    return this.n !== null;
  }

  /**
   * Sends one message; `payload` is copied, `fds` are sent with it (the caller keeps its own copies).
   * Synchronous; queued inside the addon when the socket buffer is full. Throws VHOST_USER_CLOSED when
   * closed. A socket failure closes the connection and reports it through onClose (asynchronously).
   */
  send(request: number, flags: number, payload: Uint8Array, fds: number[] = []): void {
    const frame = Buffer.allocUnsafe(VHOST_USER_HEADER_SIZE + payload.byteLength);
    frame.writeUInt32LE(request >>> 0, 0);
    frame.writeUInt32LE(flags >>> 0, 4);
    frame.writeUInt32LE(payload.byteLength, 8);
    frame.set(payload, VHOST_USER_HEADER_SIZE);
    this.sendRaw(frame, fds);
  }

  /** Sends bytes exactly as given (tests use it to send broken frames). Same rules as `send`. */
  sendRaw(bytes: Uint8Array, fds: number[] = []): void {
    if (this.n === null) throw vhostUserError('VHOST_USER_CLOSED', 'vhost-user connection is closed');
    if (fds.length > VHOST_USER_MAX_FDS) throw vhostUserError('VHOST_USER_PAYLOAD', `${fds.length} fds in one message (at most ${VHOST_USER_MAX_FDS})`);
    const rc = this.n.send(bytes, fds);
    if (rc < 0) {
      this.n.close();
      this.n = null;
      const err = vhostUserError('VHOST_USER_FRAMING', `vhost-user send failed (errno ${-rc})`, { errno: -rc });
      setImmediate(() => this.onClose(err));
    }
  }

  /** Whether the open socket keeps the process alive (default true). */
  setRef(on: boolean): void {
    this.n?.setRef(on);
  }

  /** Closes the socket. Fds already delivered belong to the onMessage consumer; fds of a partial message are closed. */
  close(): void {
    this.n?.close();
    this.n = null;
  }
}

/** A vhost-user server socket (the back end's side). */
export class VhostUserListener {
  private n: NativeListener | null;

  private constructor(n: NativeListener, readonly path: string) {
    this.n = n;
  }

  /**
   * Listens on `path` (created with `opts.mode`, default 0o600, never wider even for an instant).
   * Each accepted connection is handed to `onConnection` before any of its messages is read.
   * Rejects with VHOST_USER_SOCKET_PATH, VHOST_USER_SOCKET_IN_USE (a file exists at `path`; remove a
   * stale socket first) or VHOST_USER_LISTEN_FAILED.
   */
  static async listen(path: string, opts: { mode?: number }, onConnection: (c: VhostUserConnection) => void): Promise<VhostUserListener> {
    checkPath(path);
    let n: NativeListener;
    try {
      n = new (vhostUserNative().Listener)(path, opts.mode ?? 0o600, (fd) => onConnection(new VhostUserConnection(fd)));
    } catch (e) {
      const errno = isSyscallError(e) ? e.errno : undefined;
      if (errno === 98 /* EADDRINUSE */) throw vhostUserError('VHOST_USER_SOCKET_IN_USE', `vhost-user socket path ${path} already exists`, { cause: e });
      throw vhostUserError('VHOST_USER_LISTEN_FAILED', `cannot listen on ${path}: ${(e as Error).message}`, { errno, cause: e });
    }
    return new VhostUserListener(n, path);
  }

  /** Whether the listener keeps the process alive (default true). */
  setRef(on: boolean): void {
    this.n?.setRef(on);
  }

  /** Stops accepting and unlinks the socket file. Open connections are not affected. */
  async close(): Promise<void> {
    this.n?.close();
    this.n = null;
  }
}
