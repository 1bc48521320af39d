// The standard health service through reflection alone, as grpcurl and ghz
// use it: no .proto on the client. tests/reflection_health_test.sh starts
// joule_server and passes JOULE_GRPC_TARGET.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import grpc from '@grpc/grpc-js';
import { GrpcReflection } from 'grpc-js-reflection-client';

const target = process.env.JOULE_GRPC_TARGET;
const insecure = () => grpc.ChannelCredentials.createInsecure();

test('reflection lists the health service and describes it', async () => {
  const reflection = new GrpcReflection(target, insecure());
  const services = await reflection.listServices();
  assert.ok(services.includes('grpc.health.v1.Health'), String(services));
  const methods = await reflection.listMethods('grpc.health.v1.Health');
  assert.deepEqual(methods.map((m) => m.name).sort(), ['Check', 'Watch']);
});

test('Health/Check answers SERVING through the reflected descriptor', async () => {
  const reflection = new GrpcReflection(target, insecure());
  const descriptor = await reflection.getDescriptorBySymbol('grpc.health.v1.Health');
  const pkg = descriptor.getPackageObject({ keepCase: true, enums: String });
  const health = new pkg.grpc.health.v1.Health(target, insecure());
  for (const service of ['', 'joule.v1.Joule', 'joule.v1.Joule.cpu']) {
    const reply = await new Promise((resolve, reject) => {
      health.Check({ service }, (err, r) => (err ? reject(err) : resolve(r)));
    });
    assert.equal(reply.status, 'SERVING', `service '${service}'`);
  }
  health.close();
});

test('the Joule API itself is described too', async () => {
  const reflection = new GrpcReflection(target, insecure());
  const descriptor = await reflection.getDescriptorBySymbol('joule.v1.Joule');
  const pkg = descriptor.getPackageObject({ keepCase: true, enums: String, longs: String });
  const joule = new pkg.joule.v1.Joule(target, insecure());
  const info = await new Promise((resolve, reject) => {
    joule.GetModelInfo({}, (err, r) => (err ? reject(err) : resolve(r)));
  });
  assert.equal(info.name, 'stories260K.bin');
  assert.match(info.server_instance, /^reflection-test$/);
  joule.close();
});
