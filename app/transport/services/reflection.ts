// gRPC server reflection (grpc.reflection.v1 and v1alpha), so that grpcurl, buf curl, Postman and
// friends can discover and call our services without a copy of the .proto files.

import {
  create,
  createRegistry,
  fromBinary,
  toBinary,
  type DescEnum,
  type DescExtension,
  type DescFile,
  type DescMessage,
  type DescService,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.ts";

type Request = v1.ServerReflectionRequest;
type Response = v1.ServerReflectionResponse;
type Answer = NonNullable<MessageInitShape<typeof v1.ServerReflectionResponseSchema>["messageResponse"]>;

export function registerReflection(router: ConnectRouter, files: DescFile[]): void {
  const answer = createReflector(files);
  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) yield answer(req);
    },
  });
  // Older clients (older grpcurl builds, many IDE plugins) still speak only v1alpha. Its messages
  // are field-for-field identical to v1, so the wire bytes of one read back exactly as the other,
  // nested messages included, and there is a single implementation to keep correct. (create()
  // would convert too at runtime, but its init type rejects a message of another $typeName.)
  const { ServerReflectionRequestSchema: ReqV1, ServerReflectionResponseSchema: ResV1 } = v1;
  const { ServerReflectionRequestSchema: ReqV1alpha, ServerReflectionResponseSchema: ResV1alpha } = v1alpha;
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        const res = answer(fromBinary(ReqV1, toBinary(ReqV1alpha, req)));
        yield fromBinary(ResV1alpha, toBinary(ResV1, res));
      }
    },
  });
}

function createReflector(roots: DescFile[]): (req: Request) => Response {
  // Clients resolve imports through us too, so every transitive dependency must be answerable.
  const files = new Map<string, DescFile>(); // by file name, e.g. "chat/v1/chat.proto"
  const addFile = (file: DescFile): void => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, file);
    file.dependencies.forEach(addFile);
  };
  roots.forEach(addFile);

  const registry = createRegistry(...files.values());
  // Only services of the files we were given: a dependency's services are not necessarily served.
  const services = [...new Set(roots.flatMap((f) => f.services.map((s) => s.typeName)))].sort();
  const { symbols, extensionNumbers } = indexFiles(files.values());
  const encoded = new Map<DescFile, Uint8Array>();

  // The requested file first (clients rely on that), then everything it imports, transitively.
  // Unlike grpc-go we do not skip files already sent on this stream: that only saves bytes, and
  // would make answers depend on what the client happened to ask before.
  const withDependencies = (file: DescFile): Answer => {
    const out: Uint8Array[] = [];
    const seen = new Set<DescFile>();
    const visit = (f: DescFile): void => {
      if (seen.has(f)) return;
      seen.add(f);
      let bytes = encoded.get(f);
      if (!bytes) encoded.set(f, (bytes = toBinary(FileDescriptorProtoSchema, f.proto)));
      out.push(bytes);
      f.dependencies.forEach(visit);
    };
    visit(file);
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
  };

  // Failures are answered in-band, as grpc-go does, so that one bad lookup (a typo in grpcurl, a
  // client probing for a symbol) does not tear down the stream and the client's other lookups.
  const error = (code: Code, message: string): Answer => ({
    case: "errorResponse",
    value: { errorCode: code, errorMessage: message },
  });

  const respond = ({ messageRequest: r }: Request): Answer => {
    switch (r.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: services.map((name) => ({ name })) } };
      case "fileByFilename": {
        const file = files.get(r.value);
        return file ? withDependencies(file) : error(Code.NotFound, `file not found: ${r.value}`);
      }
      case "fileContainingSymbol": {
        const file = symbols.get(r.value);
        return file ? withDependencies(file) : error(Code.NotFound, `symbol not found: ${r.value}`);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = r.value;
        const extendee = registry.getMessage(containingType);
        const ext = extendee && registry.getExtensionFor(extendee, extensionNumber);
        return ext ? withDependencies(ext.file) : error(Code.NotFound, `extension not found: ${containingType} ${extensionNumber}`);
      }
      case "allExtensionNumbersOfType":
        return registry.getMessage(r.value)
          ? {
              case: "allExtensionNumbersResponse",
              value: { baseTypeName: r.value, extensionNumber: extensionNumbers.get(r.value) ?? [] },
            }
          : error(Code.NotFound, `message type not found: ${r.value}`);
      case undefined:
        // grpc-go fails the whole stream here; an in-band error keeps the stream usable.
        return error(Code.InvalidArgument, "invalid message_request: none set");
    }
  };

  return (req) =>
    create(v1.ServerReflectionResponseSchema, {
      validHost: req.host,
      originalRequest: req,
      messageResponse: respond(req),
    });
}

// Maps every fully-qualified name a client may ask about to its file. The registry only knows
// types (messages, enums, extensions, services); clients also ask for methods ("pkg.Svc.Method" is
// what grpcurl sends before a call), fields, oneofs and enum values.
function indexFiles(files: Iterable<DescFile>) {
  const symbols = new Map<string, DescFile>();
  const extensionNumbers = new Map<string, number[]>(); // by extendee type name
  for (const file of files) {
    const add = (name: string) => symbols.set(name, file);
    for (const type of typesIn(file)) {
      add(type.typeName);
      switch (type.kind) {
        case "service":
          for (const method of type.methods) add(`${type.typeName}.${method.name}`);
          break;
        case "message":
          for (const member of [...type.fields, ...type.oneofs]) add(`${type.typeName}.${member.name}`);
          // Map entry messages (e.g. "Req.LabelsEntry") exist in the descriptor but protobuf-es
          // leaves them out of nestedMessages.
          for (const nested of type.proto.nestedType) add(`${type.typeName}.${nested.name}`);
          break;
        case "enum": {
          // Protobuf scopes enum values as siblings of their enum (C++ rules), so the proper full
          // name is "pkg.VALUE"; "pkg.Enum.VALUE" is accepted too since people naturally type it.
          const scope = type.parent?.typeName ?? file.proto.package;
          for (const value of type.values) {
            add(scope ? `${scope}.${value.name}` : value.name);
            add(`${type.typeName}.${value.name}`);
          }
          break;
        }
        case "extension": {
          const numbers = extensionNumbers.get(type.extendee.typeName) ?? [];
          extensionNumbers.set(type.extendee.typeName, [...numbers, type.number]);
          break;
        }
      }
    }
  }
  return { symbols, extensionNumbers };
}

function* typesIn(file: DescFile): Generator<DescMessage | DescEnum | DescExtension | DescService> {
  yield* file.services;
  yield* file.enums;
  yield* file.extensions;
  // Breadth-first: a for-of over an array also visits what is pushed during the loop.
  const messages = [...file.messages];
  for (const message of messages) {
    yield message;
    yield* message.nestedEnums;
    yield* message.nestedExtensions;
    messages.push(...message.nestedMessages);
  }
}
