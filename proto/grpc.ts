// The control plane over grpc-js, for the servers and their tools: serving (addService, bindServer) and calling
// (ControlClient). proto's second entry, apart from index.ts so that the client, which uses control-light.ts,
// never loads grpc-js or protobufjs.
export * from './control.ts';
export { MessageStreamClient, type SharedSessions, type StreamMethod } from './message-stream.ts';
export * from './unary-server.ts';
