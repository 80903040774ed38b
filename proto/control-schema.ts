/**
 * The control-plane messages the client sends and reads, as field tables for `protobuf-lite.ts`: what
 * control.proto says of them, repeated so that the client needs neither protobufjs nor the .proto file at run
 * time. `control-light.test.ts` encodes and decodes every one of them against protobufjs reading control.proto,
 * so the two cannot drift apart unnoticed.
 */
import type { MessageSchema } from './protobuf-lite.ts';

const Empty: MessageSchema = [];

const JobHints: MessageSchema = [
  { no: 1, name: 'latencySensitive', type: 'bool', optional: true },
  { no: 2, name: 'capacity', type: 'double', optional: true },
  { no: 3, name: 'peakThroughput', type: 'double', optional: true },
  { no: 4, name: 'functions', type: 'uint32', optional: true },
  { no: 5, name: 'replicas', type: 'uint32', optional: true },
  { no: 6, name: 'maxValueBytes', type: 'double', optional: true },
];

const PlacementNode: MessageSchema = [
  { no: 1, name: 'id', type: 'string' },
  { no: 2, name: 'address', type: 'string' },
  { no: 3, name: 'weight', type: 'double' },
];

const Generation: MessageSchema = [{ no: 1, name: 'nodes', type: PlacementNode, repeated: true }];

const Placement: MessageSchema = [
  { no: 1, name: 'jobId', type: 'string' },
  { no: 2, name: 'epoch', type: 'uint32' },
  { no: 3, name: 'generations', type: Generation, repeated: true },
  { no: 4, name: 'blockSize', type: 'uint32' },
  { no: 5, name: 'maxValueBytes', type: 'double' },
  { no: 6, name: 'replicas', type: 'uint32' },
];

const NodeInfo: MessageSchema = [
  { no: 1, name: 'id', type: 'string' },
  { no: 2, name: 'tier', type: 'string' },
  { no: 3, name: 'address', type: 'string' },
  { no: 4, name: 'capacity', type: 'double' },
  { no: 5, name: 'bandwidth', type: 'double' },
  { no: 6, name: 'bootId', type: 'string' },
];

/** `Service/Method` → [request, reply], for the calls the client makes. */
export const LIGHT_METHODS: Record<string, readonly [MessageSchema, MessageSchema]> = {
  'satchel.v1.Controller/RegisterJob': [
    [
      { no: 1, name: 'name', type: 'string' },
      { no: 2, name: 'hints', type: JobHints },
      { no: 3, name: 'key', type: 'string' },
    ],
    [
      { no: 1, name: 'jobId', type: 'string' },
      { no: 2, name: 'token', type: 'string' },
      { no: 3, name: 'ticket', type: 'string' },
      { no: 4, name: 'leaseMs', type: 'uint32' },
      { no: 5, name: 'placement', type: Placement },
      { no: 6, name: 'driverToken', type: 'string' },
    ],
  ],
  'satchel.v1.Controller/DeregisterJob': [
    [
      { no: 1, name: 'jobId', type: 'string' },
      { no: 2, name: 'token', type: 'string' },
    ],
    Empty,
  ],
  'satchel.v1.Controller/RenewLease': [
    [
      { no: 1, name: 'jobId', type: 'string' },
      { no: 2, name: 'token', type: 'string' },
    ],
    [
      { no: 1, name: 'leaseMs', type: 'uint32' },
      { no: 2, name: 'ticket', type: 'string' },
    ],
  ],
  'satchel.v1.Controller/GrowJob': [
    [
      { no: 1, name: 'jobId', type: 'string' },
      { no: 2, name: 'token', type: 'string' },
      { no: 3, name: 'fullNodeId', type: 'string' },
      { no: 4, name: 'epoch', type: 'uint32' },
    ],
    Placement,
  ],
  'satchel.v1.Controller/GetCluster': [
    [{ no: 1, name: 'token', type: 'string' }],
    [
      { no: 1, name: 'nodes', type: NodeInfo, repeated: true },
      { no: 2, name: 'metadata', type: 'string', repeated: true },
      { no: 3, name: 'jobs', type: 'uint32' },
    ],
  ],
  'satchel.v1.Metadata/GetPlacement': [
    [
      { no: 1, name: 'jobId', type: 'string' },
      { no: 2, name: 'token', type: 'string' },
    ],
    Placement,
  ],
};
