// The room calls that both services have, ChatService for users and ServerService for API keys:
// what each does in the chat core, given who asks (a user, or a key's actor), in one place.
import { create } from "@bufbuild/protobuf";
import {
  type AddMemberRequest,
  type BanRequest,
  type CreateRoomRequest,
  type DeleteRoomRequest,
  DeleteRoomResponseSchema,
  type GetRoomRequest,
  type ListMembersRequest,
  ListMembersResponseSchema,
  type Message,
  type MuteRequest,
  type RemoveMemberRequest,
  RoomChangeResponseSchema,
  RoomResponseSchema,
  type SetRoleRequest,
  type UnbanRequest,
  type UnmuteRequest,
  type UpdateRoomRequest,
} from "../../gen/chat/v1/chat_pb.ts";
import type { ChatCore } from "../../core/chat.ts";
import type { Actor } from "../../core/room-rules.ts";

/** The entry that recorded a change; none when there was nothing to change (an unban of someone not banned). */
const changed = (entry: Message | undefined) => create(RoomChangeResponseSchema, { entry });

export const ROOM_CALLS = {
  createRoom: async (core: ChatCore, a: Actor, req: CreateRoomRequest) =>
    create(RoomResponseSchema, await core.rooms.create(a, req.name, req.kind, req.title, req.topic)),
  getRoom: async (core: ChatCore, a: Actor, req: GetRoomRequest) => create(RoomResponseSchema, { room: core.rooms.get(a, req.room) }),
  updateRoom: async (core: ChatCore, a: Actor, req: UpdateRoomRequest) =>
    create(RoomResponseSchema, await core.rooms.update(a, req.room, { title: req.title, topic: req.topic, kind: req.kind })),
  deleteRoom: async (core: ChatCore, a: Actor, req: DeleteRoomRequest) => {
    await core.rooms.delete(a, req.room);
    return create(DeleteRoomResponseSchema);
  },
  listMembers: async (core: ChatCore, a: Actor, req: ListMembersRequest) => create(ListMembersResponseSchema, core.rooms.members(a, req.room)),
  addMember: async (core: ChatCore, a: Actor, req: AddMemberRequest) => changed(await core.rooms.addMember(a, req.room, req.user)),
  removeMember: async (core: ChatCore, a: Actor, req: RemoveMemberRequest) => changed(await core.rooms.removeMember(a, req.room, req.user)),
  setRole: async (core: ChatCore, a: Actor, req: SetRoleRequest) => changed(await core.rooms.setRole(a, req.room, req.user, req.role)),
  ban: async (core: ChatCore, a: Actor, req: BanRequest) => changed(await core.rooms.ban(a, req.room, req.user, req.until, req.reason)),
  unban: async (core: ChatCore, a: Actor, req: UnbanRequest) => changed(await core.rooms.unban(a, req.room, req.user)),
  mute: async (core: ChatCore, a: Actor, req: MuteRequest) => changed(await core.rooms.mute(a, req.room, req.user, req.until)),
  unmute: async (core: ChatCore, a: Actor, req: UnmuteRequest) => changed(await core.rooms.unmute(a, req.room, req.user)),
};
