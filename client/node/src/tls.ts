// TLS to a daemon's TCP address (siobridged's listen.tls_cert), and a client
// certificate for a daemon that asks for one (listen.tls_client_ca). Each of
// ca, cert and key is a PEM file's path or its contents as a Buffer.
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";

export interface TlsOptions {
  /** The CA certificate(s) that signed the daemon's certificate. */
  ca: string | Buffer;
  /** A client certificate (chain), for a daemon that requires one; with `key`. */
  cert?: string | Buffer;
  /** The client certificate's private key. */
  key?: string | Buffer;
}

function pem(value: string | Buffer, what: string): Buffer {
  if (Buffer.isBuffer(value)) return value;
  try {
    return readFileSync(value);
  } catch (error) {
    throw new Error(`siobridge adapter: tls.${what}: cannot read ${value}: ${(error as Error).message}`);
  }
}

/** The channel credentials for `address`: insecure without `tls`. Throws for unusable options. */
export function channelCredentials(address: string, tls: TlsOptions | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  if (address.startsWith("unix:") || address.startsWith("/")) {
    throw new Error(`siobridge adapter: tls is for a TCP address (host:port), not the Unix socket ${address}`);
  }
  if (!tls.ca) throw new Error("siobridge adapter: tls needs ca, the CA of the daemon's certificate");
  if (!tls.cert !== !tls.key) throw new Error("siobridge adapter: tls.cert and tls.key go together");
  return grpc.credentials.createSsl(
    pem(tls.ca, "ca"),
    tls.key ? pem(tls.key, "key") : null,
    tls.cert ? pem(tls.cert, "cert") : null,
  );
}
