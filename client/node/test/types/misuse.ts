// Compiled by types.test.mjs and never run: each @ts-expect-error marks a
// mistake the generated types and the unions of src/messages.ts must reject
// (tsc fails on an expect-error that is not needed, e.g. where a type is `any`).
import type { Command, DaemonMessage, Result } from "../../src/messages";
import type { Session } from "../../src/connection";

declare const command: Command;
declare const message: DaemonMessage;
declare const result: Result;
declare const session: Session;

export function commands(): string[] {
  switch (command.kind) {
    case "fetch_sockets":
      // @ts-expect-error: a fetch_sockets Command holds no packet
      return command.broadcast.data;
    case "add_sockets":
      return command.add_sockets.rooms;
    case "broadcast_with_ack":
      // @ts-expect-error: ack_timeout_ms is a number
      return command.broadcast_with_ack.ack_timeout_ms.split("");
    default:
      // @ts-expect-error: no such command
      return command.kind === "fly" ? [] : [];
  }
}

export function messages(): string {
  if (message.kind === "welcome") return message.welcome.attachment_id;
  // @ts-expect-error: only a Welcome has a welcome
  return message.welcome.node_uid;
}

export function results(): number {
  if (result.kind === "server_count") return result.server_count.count;
  // @ts-expect-error: Result has no field `count`
  return result.count;
}

export async function calls(): Promise<number> {
  // @ts-expect-error: a ServerCountRequest has no rooms
  await session.call("server_count", { namespace: "/", rooms: [] }, 1);
  // @ts-expect-error: not an operation of the API
  session.send("broadcast_to_all_planets", {});
  // @ts-expect-error: broadcast is not answered, so it cannot be awaited as a call
  await session.call("broadcast", {}, 1);
  const rooms: string[] = (await session.call("all_rooms", { namespace: "/" }, 1)).rooms;
  // @ts-expect-error: fetchSockets answers with sockets, not rooms
  const wrong: string[] = (await session.call("fetch_sockets", { namespace: "/" }, 1)).rooms;
  return rooms.length + wrong.length;
}
