// One kafkajs session against a broker, step by step: prints one JSON line per step,
// {"step": NAME, "ok": true, "value": ...} or {"step": NAME, "ok": false, "error": ...,
// "type": KAFKA_ERROR_TYPE}. tests/integration/test_kafkajs.py runs it and checks the lines.
// Usage: node scenario.js HOST:PORT TOPIC
'use strict'
const { Kafka, logLevel, CompressionTypes } = require('kafkajs')

const [bootstrap, topic] = process.argv.slice(2)
const group = `g-${topic}`
const kafka = new Kafka({
  clientId: 'strom-kafkajs-test',
  brokers: [bootstrap],
  logLevel: logLevel.NOTHING,
  retry: { retries: 5 },
})

function emit(line) { process.stdout.write(JSON.stringify(line) + '\n') }

async function step(name, fn) {
  try {
    const value = await fn()
    emit({ step: name, ok: true, value: value === undefined ? null : value })
    return value
  } catch (e) {
    const inner = e.errors && e.errors[0] ? e.errors[0] : e
    emit({ step: name, ok: false, error: `${e.name}: ${e.message}`, type: inner.type || null })
    return undefined
  }
}

function within(ms, promise, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)),
  ])
}

function consumeUntil(consumer, count, config = {}) {
  const seen = []
  const done = new Promise((resolve) => {
    consumer.run({
      ...config,
      eachMessage: async ({ partition, message }) => {
        seen.push({
          partition,
          offset: message.offset,
          key: message.key && message.key.toString(),
          value: message.value && message.value.toString(),
          headers: Object.fromEntries(
            Object.entries(message.headers || {}).map(([k, v]) => [k, v && v.toString()])),
        })
        if (seen.length >= count) resolve(seen)
      },
    })
  })
  return within(30000, done, `${count} records`).then(() => seen)
}

async function main() {
  const admin = kafka.admin()
  await step('admin.connect', () => admin.connect())
  await step('createTopics', () => admin.createTopics({ topics: [{ topic, numPartitions: 3 }] }))
  await step('createTopics again', () => admin.createTopics({ topics: [{ topic, numPartitions: 3 }] }))
  await step('createTopics invalid name', () => admin.createTopics({ topics: [{ topic: 'bad name!', numPartitions: 1 }] }))
  await step('metadata', async () => {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] })
    return topics[0].partitions.map((p) => [p.partitionId, p.leader, p.replicas, p.isr])
  })
  await step('describeCluster', async () => {
    const c = await admin.describeCluster()
    return { brokers: c.brokers.map((b) => [b.nodeId, b.host, b.port]), controller: c.controller }
  })
  await step('alterConfigs', () => admin.alterConfigs({
    resources: [{ type: 2, name: topic, configEntries: [{ name: 'retention.ms', value: '123456789' }] }],
  }).then(() => null))
  await step('describeConfigs', async () => {
    const { resources } = await admin.describeConfigs({ resources: [{ type: 2, name: topic, configNames: ['retention.ms'] }] })
    return resources[0].configEntries.map((e) => [e.configName, e.configValue])
  })
  await step('createPartitions', () => admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] }))

  const producer = kafka.producer({ idempotent: true })
  await step('producer.connect', () => producer.connect())
  await step('send', async () => {
    const messages = Array.from({ length: 20 }, (_, i) => ({
      partition: i % 4, key: `k${i}`, value: `v${i}`, headers: { h: `x${i}` },
    }))
    const acks = await producer.send({ topic, messages })
    return acks.map((a) => [a.partition, a.errorCode, a.baseOffset]).sort()
  })
  await step('send gzip', async () => {
    const acks = await producer.send({
      topic, compression: CompressionTypes.GZIP,
      messages: [{ partition: 0, key: 'gk', value: 'gv' }, { partition: 0, key: 'gk2', value: 'gv2' }],
    })
    return acks.map((a) => [a.partition, a.errorCode, a.baseOffset])
  })
  await step('fetchTopicOffsets', async () =>
    (await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, o.low, o.high]).sort())

  const consumer = kafka.consumer({ groupId: group, heartbeatInterval: 500 })
  await step('consumer.connect', () => consumer.connect())
  await step('subscribe', () => consumer.subscribe({ topics: [topic], fromBeginning: true }))
  await step('consume', () => consumeUntil(consumer, 22))
  await step('describeGroups', async () => {
    const { groups } = await admin.describeGroups([group])
    return { state: groups[0].state, protocol: groups[0].protocol, members: groups[0].members.length }
  })
  await step('consumer.disconnect', () => consumer.disconnect())
  await step('fetchOffsets', async () => {
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
    return t.partitions.map((p) => [p.partition, p.offset]).sort()
  })
  await step('setOffsets', () => admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '1' }] }))
  await step('fetchOffsets after set', async () => {
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
    return t.partitions.filter((p) => p.partition === 0).map((p) => p.offset)[0]
  })
  await step('deleteTopicRecords', () => admin.deleteTopicRecords({ topic, partitions: [{ partition: 1, offset: '2' }] }))
  await step('low watermark', async () =>
    (await admin.fetchTopicOffsets(topic)).filter((o) => o.partition === 1).map((o) => o.low)[0])

  const txn = kafka.producer({ transactionalId: `tx-${topic}`, idempotent: true, maxInFlightRequests: 1 })
  await step('txn.connect', () => txn.connect())
  await step('txn commit', async () => {
    const t = await txn.transaction()
    await t.send({ topic, messages: [{ partition: 2, value: 'committed' }] })
    await t.sendOffsets({ consumerGroupId: group, topics: [{ topic, partitions: [{ partition: 3, offset: '1' }] }] })
    await t.commit()
  })
  await step('txn abort', async () => {
    const t = await txn.transaction()
    await t.send({ topic, messages: [{ partition: 2, value: 'aborted' }] })
    await t.abort()
  })
  await step('txn.disconnect', () => txn.disconnect())
  await step('fetchOffsets after txn', async () => {
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
    return t.partitions.filter((p) => p.partition === 3).map((p) => p.offset)[0]
  })
  const reader = kafka.consumer({ groupId: `${group}-committed`, readUncommitted: false })
  await reader.connect()
  await reader.subscribe({ topics: [topic], fromBeginning: true })
  // 1 deleted of partition 1's records are gone: 22 - 2 + 1 committed record
  await step('read_committed', async () => {
    const seen = await consumeUntil(reader, 21)
    await new Promise((r) => setTimeout(r, 1000))  // anything after the 21st would be wrong
    return seen.filter((r) => r.partition === 2).map((r) => r.value)
  })
  await reader.disconnect()

  await step('deleteGroups', async () => (await admin.deleteGroups([group])).map((g) => [g.groupId, g.errorCode]))
  await step('deleteTopics', () => admin.deleteTopics({ topics: [topic] }))
  await step('listTopics after delete', async () => (await admin.listTopics()).includes(topic))
  await producer.disconnect()
  await admin.disconnect()
}

main().then(() => process.exit(0), (e) => { emit({ step: 'main', ok: false, error: String(e) }); process.exit(1) })
