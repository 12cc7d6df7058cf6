/**
 * Finding a free TCP port on the loopback interface for a server we are about to start.
 */
import net from "node:net"

/**
 * Asks the kernel for a free port on `host` by listening on port 0 and closing again. Another process
 * may still take the port before our server binds it, so callers retry on "Address already in use".
 */
export const freeLoopbackPort = (host = "127.0.0.1"): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once("error", reject)
    server.listen(0, host, () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : undefined
      server.close(() => (port === undefined ? reject(new Error("no port assigned")) : resolve(port)))
    })
  })
