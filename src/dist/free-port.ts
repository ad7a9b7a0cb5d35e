// A port for a single-machine job's rendezvous (TCPStore) when the user names none.
import { createServer } from "node:net";

/** A TCP port on `host` that was free a moment ago (the kernel's pick for port 0). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Whether a rendezvous server could listen on `port` now: false when another process holds it
 * (EADDRINUSE). c10d's TCPStore binds every local address, so the probe does too.
 */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") resolve(false);
      else reject(error);
    });
    server.listen(port, () => server.close(() => resolve(true)));
  });
}
