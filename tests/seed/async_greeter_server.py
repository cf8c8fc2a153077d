# The seed tutorial's final Python grpc.aio server (CustomerCenter, disconnect
# handling, SayHelloStream2), as published. The test only rewrites
# listen_addr to a free loopback port.
import asyncio
from collections import defaultdict
from datetime import datetime
import logging

import grpc
import helloworld_pb2
import helloworld_pb2_grpc


class CustomerCenter:
    def __init__(self):
        self.clients = {}
        # store each client's message in queue
        self.client_queues = defaultdict(asyncio.Queue)

    async def start(self):
        # start center
        # for each second elapsed, it will send a message to all clients
        while True:
            await asyncio.sleep(1)
            for client_name in self.clients.keys():
                await self.client_queues[client_name].put("hello " + client_name + ", it's " + datetime.now().strftime("%Y-%m-%d %H:%M:%S"))

    def client_enter(self, client_name):
        """
        a client enter
        """
        self.clients[client_name] = ''

    def client_leave(self, client_name):
        """
        a client leave the center
        """
        print('client %s is leaving.' % client_name)
        self.clients.pop(client_name)
        self.client_queues.pop(client_name)

    def get_queue(self, client_name):
        return self.client_queues[client_name]


class Greeter(helloworld_pb2_grpc.GreeterServicer):
    def __init__(self, customer_center:CustomerCenter):
        self.customer_center = customer_center

    async def SayHello(
        self,
        request: helloworld_pb2.HelloRequest,
        context: grpc.aio.ServicerContext,
    ) -> helloworld_pb2.HelloReply:
        return helloworld_pb2.HelloReply(message="Hello, %s!" % request.name)

    async def SayHelloStreamReply(
        self,
        request: helloworld_pb2.HelloRequest,
        context: grpc.aio.ServicerContext,
    ) -> helloworld_pb2.HelloReply:
        self.customer_center.client_enter(request.name)
        queue = self.customer_center.get_queue(request.name)

        try:
            while True:
                message = await queue.get()
                yield helloworld_pb2.HelloReply(message=message)
        except asyncio.CancelledError:
            print(f'client {request.name} disconnected.')
            self.customer_center.client_leave(request.name)

    async def SayHelloStream2(
        self,
        request: helloworld_pb2.HelloRequest,
        context: grpc.aio.ServicerContext,
    ) -> helloworld_pb2.HelloReply:
        yield helloworld_pb2.GreetingMessage(firstGreetingMessage=helloworld_pb2.FirstGreetingMessage())
        for i in range(5):
            await asyncio.sleep(1)
            yield helloworld_pb2.GreetingMessage(timerGreetingMessage=helloworld_pb2.TimerGreetingMessage())

        yield helloworld_pb2.GreetingMessage(goodbyeGreetingMessage=helloworld_pb2.GoodbyeGreetingMessage())


async def serve() -> None:
    server = grpc.aio.server()
    customer_center = CustomerCenter()
    helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(customer_center), server)
    listen_addr = "[::]:50051"
    server.add_insecure_port(listen_addr)
    logging.info("Starting server on %s", listen_addr)

    # start customer center
    asyncio.create_task(customer_center.start())
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(serve())
