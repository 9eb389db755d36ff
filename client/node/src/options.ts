// socket.io's BroadcastOptions and the daemon's (proto BroadcastOptions), and
// socket.io's rule for which packets a recovered session missed.
import type { BroadcastOptions, Room } from "socket.io-adapter";

import type { BroadcastOptions__Output } from "./messages";

export function toProto(opts: BroadcastOptions) {
  return {
    rooms: [...(opts.rooms ?? [])],
    except: [...(opts.except ?? [])],
    // socket.io's "no rooms" means every socket: PROTOCOL.md's Broadcast flag.
    exclude_sid: true,
    volatile: !!opts.flags?.volatile,
    local: false,
  };
}

// PROTOCOL.md section 3: how options select sockets, in socket.io's terms.
// Returns null when they select none.
export function fromProto(opts: BroadcastOptions__Output | null): BroadcastOptions | null {
  const rooms = new Set<Room>(opts?.rooms ?? []);
  const except = new Set<Room>(opts?.except ?? []);
  const sid = opts?.sid || undefined;
  if (sid) {
    if (opts?.exclude_sid) except.add(sid);
    else if (rooms.size === 0) rooms.add(sid);
  } else if (rooms.size === 0 && !opts?.exclude_sid) {
    return null;
  }
  return { rooms, except, flags: { volatile: !!opts?.volatile } };
}

// socket.io's rule for a packet missed by a session (its SessionAwareAdapter).
export function reachesSession(opts: BroadcastOptions, rooms: Room[]): boolean {
  const included = opts.rooms.size === 0 || rooms.some((room) => opts.rooms.has(room));
  return included && !rooms.some((room) => opts.except?.has(room));
}
