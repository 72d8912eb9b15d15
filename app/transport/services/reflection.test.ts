import { describe, expect, test } from "bun:test";
import { create, createFileRegistry, fromBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { file_chat_chat } from "../../gen/chat/chat_pb.ts";
import { file_chat_v1_chat } from "../../gen/chat/v1/chat_pb.ts";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.ts";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.ts";
import { registerReflection } from "./reflection.ts";

// A proto2 file with an extension, since none of our real protos declare one:
//   package ext.test; message Base { extensions 100 to 199; } extend Base { optional int32 tag = 123; }
const extFile: DescFile = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "ext/test.proto",
    package: "ext.test",
    syntax: "proto2",
    messageType: [{ name: "Base", extensionRange: [{ start: 100, end: 200 }] }],
    extension: [{ name: "tag", number: 123, label: 1 /* optional */, type: 5 /* int32 */, extendee: ".ext.test.Base" }],
  }),
  () => undefined,
).getFile("ext/test.proto")!;

const FILES = [
  file_chat_v1_chat,
  file_chat_chat,
  file_grpc_health_v1_health,
  v1.file_grpc_reflection_v1_reflection,
  v1alpha.file_grpc_reflection_v1alpha_reflection,
  extFile,
];

type Request = Parameters<typeof create<typeof v1.ServerReflectionRequestSchema>>[1];

// Opens one reflection stream and returns a function that sends a request and waits for its
// answer, so that a test can check that the stream survives an error answer.
function openStream(version: typeof v1 | typeof v1alpha) {
  const transport = createRouterTransport((router) => registerReflection(router, FILES));
  const client = createClient(version.ServerReflection, transport);
  const queue: Request[] = [];
  let wake: (() => void) | undefined;
  async function* requests() {
    for (;;) {
      while (queue.length) yield queue.shift()!;
      await new Promise<void>((r) => (wake = r));
    }
  }
  const responses = client.serverReflectionInfo(requests())[Symbol.asyncIterator]();
  return async (req: Request) => {
    queue.push({ host: "localhost:8080", ...req });
    wake?.();
    const { value, done } = await responses.next();
    if (done) throw new Error("stream ended");
    return value;
  };
}

function fileNames(res: { messageResponse: { case: string | undefined; value?: unknown } }): string[] {
  expect(res.messageResponse.case).toBe("fileDescriptorResponse");
  const { fileDescriptorProto } = res.messageResponse.value as v1.FileDescriptorResponse;
  return fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);
}

const CHAT_V1 = ["chat/v1/chat.proto", "google/protobuf/timestamp.proto"];

for (const [name, version] of [
  ["v1", v1],
  ["v1alpha", v1alpha],
] as const) {
  describe(`grpc.reflection.${name}`, () => {
    test("list_services lists every service of the given files, and echoes host and request", async () => {
      const ask = openStream(version);
      const res = await ask({ messageRequest: { case: "listServices", value: "*" } });
      expect(res.$typeName).toBe(`grpc.reflection.${name}.ServerReflectionResponse`);
      expect(res.validHost).toBe("localhost:8080");
      expect(res.originalRequest?.$typeName).toBe(`grpc.reflection.${name}.ServerReflectionRequest`);
      expect(res.originalRequest?.messageRequest).toEqual({ case: "listServices", value: "*" });
      expect(res.messageResponse.case).toBe("listServicesResponse");
      const services = (res.messageResponse.value as v1.ListServiceResponse).service.map((s) => s.name);
      expect(services).toEqual([
        "chat.ChatService",
        "chat.v1.ChatService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
      ]);
    });

    test("file_containing_symbol finds services, methods, messages and their members", async () => {
      const ask = openStream(version);
      const cases: [string, string[]][] = [
        ["chat.v1.ChatService", CHAT_V1],
        ["chat.v1.ChatService.Send", CHAT_V1],
        ["chat.v1.Message", CHAT_V1],
        ["chat.v1.Message.sent_at", CHAT_V1], // field
        ["chat.v1.ChatRequest.kind", CHAT_V1], // oneof
        ["chat.v1.SubscribeRequest.SinceSeqEntry", CHAT_V1], // map entry
        ["chat.v1.PresenceAction", CHAT_V1], // enum
        ["chat.v1.PRESENCE_ACTION_JOINED", CHAT_V1], // enum value, protobuf scoping
        ["chat.v1.PresenceAction.PRESENCE_ACTION_JOINED", CHAT_V1], // enum value, as people type it
        ["chat.ChatService", ["chat/chat.proto"]],
        ["chat.ChatMessage", ["chat/chat.proto"]],
        ["grpc.health.v1.HealthCheckResponse.ServingStatus", ["grpc/health/v1/health.proto"]], // nested enum
        ["grpc.health.v1.HealthCheckResponse.SERVING", ["grpc/health/v1/health.proto"]],
        ["google.protobuf.Timestamp", ["google/protobuf/timestamp.proto"]], // from a dependency
        ["ext.test.tag", ["ext/test.proto"]], // extension
      ];
      for (const [symbol, files] of cases) {
        const res = await ask({ messageRequest: { case: "fileContainingSymbol", value: symbol } });
        expect({ symbol, files: fileNames(res) }).toEqual({ symbol, files });
      }
    });

    test("the returned descriptors are complete enough to call the service", async () => {
      const ask = openStream(version);
      const res = await ask({ messageRequest: { case: "fileContainingSymbol", value: "chat.v1.ChatService.Send" } });
      expect(res.messageResponse.case).toBe("fileDescriptorResponse");
      const [chat, timestamp] = (res.messageResponse.value as v1.FileDescriptorResponse).fileDescriptorProto.map((b) =>
        fromBinary(FileDescriptorProtoSchema, b),
      );
      expect(chat?.package).toBe("chat.v1");
      expect(chat?.dependency).toEqual(["google/protobuf/timestamp.proto"]);
      const send = chat?.service.find((s) => s.name === "ChatService")?.method.find((m) => m.name === "Send");
      expect(send?.inputType).toBe(".chat.v1.SendRequest");
      expect(send?.outputType).toBe(".chat.v1.SendResponse");
      const sentAt = chat?.messageType.find((m) => m.name === "Message")?.field.find((f) => f.name === "sent_at");
      expect(sentAt?.typeName).toBe(".google.protobuf.Timestamp");
      expect(sentAt?.jsonName).toBe("sentAt"); // stripped from the embedded form, restored at load
      expect(timestamp?.messageType.map((m) => m.name)).toEqual(["Timestamp"]);
    });

    test("file_by_filename returns the file and its dependencies", async () => {
      const ask = openStream(version);
      const health = await ask({ messageRequest: { case: "fileByFilename", value: "grpc/health/v1/health.proto" } });
      expect(fileNames(health)).toEqual(["grpc/health/v1/health.proto"]);
      const chat = await ask({ messageRequest: { case: "fileByFilename", value: "chat/v1/chat.proto" } });
      expect(fileNames(chat)).toEqual(CHAT_V1);
      const dep = await ask({ messageRequest: { case: "fileByFilename", value: "google/protobuf/timestamp.proto" } });
      expect(fileNames(dep)).toEqual(["google/protobuf/timestamp.proto"]);
    });

    test("errors are answered in-band with NOT_FOUND and the stream keeps going", async () => {
      const ask = openStream(version);
      const unknown = await ask({ messageRequest: { case: "fileContainingSymbol", value: "chat.v1.Nope" } });
      expect(unknown.messageResponse.case).toBe("errorResponse");
      expect(unknown.messageResponse.value).toMatchObject({ errorCode: 5 });
      expect((unknown.messageResponse.value as v1.ErrorResponse).errorMessage).toContain("chat.v1.Nope");
      expect(unknown.originalRequest?.messageRequest).toEqual({ case: "fileContainingSymbol", value: "chat.v1.Nope" });

      const noFile = await ask({ messageRequest: { case: "fileByFilename", value: "nope.proto" } });
      expect(noFile.messageResponse.value).toMatchObject({ errorCode: 5 });

      const empty = await ask({});
      expect(empty.messageResponse.value).toMatchObject({ errorCode: 3 }); // INVALID_ARGUMENT

      const next = await ask({ messageRequest: { case: "fileContainingSymbol", value: "chat.v1.ChatService" } });
      expect(fileNames(next)).toEqual(CHAT_V1);
    });

    test("extensions: numbers of a type, file containing one, and unknowns", async () => {
      const ask = openStream(version);
      const numbers = await ask({ messageRequest: { case: "allExtensionNumbersOfType", value: "ext.test.Base" } });
      expect(numbers.messageResponse.case).toBe("allExtensionNumbersResponse");
      expect(numbers.messageResponse.value).toMatchObject({ baseTypeName: "ext.test.Base", extensionNumber: [123] });

      const none = await ask({ messageRequest: { case: "allExtensionNumbersOfType", value: "chat.v1.Message" } });
      expect(none.messageResponse.value).toMatchObject({ baseTypeName: "chat.v1.Message", extensionNumber: [] });

      const noType = await ask({ messageRequest: { case: "allExtensionNumbersOfType", value: "chat.v1.Nope" } });
      expect(noType.messageResponse.value).toMatchObject({ errorCode: 5 });

      const found = await ask({
        messageRequest: { case: "fileContainingExtension", value: { containingType: "ext.test.Base", extensionNumber: 123 } },
      });
      expect(fileNames(found)).toEqual(["ext/test.proto"]);

      const missing = await ask({
        messageRequest: { case: "fileContainingExtension", value: { containingType: "chat.v1.Message", extensionNumber: 1 } },
      });
      expect(missing.messageResponse.value).toMatchObject({ errorCode: 5 });
    });
  });
}
