# The seed tutorial's final Python grpc.aio client, as published, plus the
# `import sys` the article's listing leaves out. The test only rewrites the
# "localhost:50051" target to the server under test.
import asyncio
import logging
import sys

import grpc
import helloworld_pb2
import helloworld_pb2_grpc


async def run() -> None:
    # retreve client name from command line.
    name = sys.argv[1] if len(sys.argv) > 1 else "world"

    async with grpc.aio.insecure_channel("localhost:50051") as channel:
        stub = helloworld_pb2_grpc.GreeterStub(channel)
        response = await stub.SayHello(helloworld_pb2.HelloRequest(name=name))
        print("Greeter client received: " + response.message)

    async with grpc.aio.insecure_channel("localhost:50051") as channel:
        stub = helloworld_pb2_grpc.GreeterStub(channel)

        request = helloworld_pb2.HelloRequest(name=name)

        response_stream2 = stub.SayHelloStream2(request)

        async for res in response_stream2:
            res:helloworld_pb2.GreetingMessage = res
            if res.HasField('firstGreetingMessage'):
                print("firstGreetingMessage received:", res.firstGreetingMessage)
            elif res.HasField('timerGreetingMessage'):
                print("timerGreetingMessage received:", res.timerGreetingMessage)
            elif res.HasField('goodbyeGreetingMessage'):
                print("goodbyeGreetingMessage received:", res.goodbyeGreetingMessage)
            else:
                print('unknown message received.')


if __name__ == "__main__":
    logging.basicConfig()
    asyncio.run(run())
