// @siobridge/socket.io-adapter: scale socket.io servers across hosts through
// the siobridged daemon of each host (and MongoDB), in a cluster that Rust
// socketioxide servers can share.
//
//   import { Server } from "socket.io";
//   import { createAdapter } from "@siobridge/socket.io-adapter";
//   const io = new Server(3000, { adapter: createAdapter() });
import type { Namespace } from "socket.io";

import { Parser, SiobridgeAdapter, SiobridgeAdapterOptions, TlsOptions, defaultAddress } from "./adapter";
import { SiobridgeError, Status } from "./errors";

export { SiobridgeAdapter, SiobridgeAdapterOptions, defaultAddress, Parser, SiobridgeError, Status, TlsOptions };
/** The former name of SiobridgeError. */
export { SiobridgeError as CallError };

/** What createAdapter returns: an Adapter constructor taking the namespace. */
export type SiobridgeAdapterConstructor = new (nsp: Namespace) => SiobridgeAdapter;

/** The adapter constructor for `io.adapter(...)` or `new Server({ adapter })`. */
export function createAdapter(options: SiobridgeAdapterOptions = {}): SiobridgeAdapterConstructor {
  return class extends SiobridgeAdapter {
    constructor(nsp: Namespace) {
      super(nsp, options);
    }
  };
}
