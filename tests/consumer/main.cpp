// Publishes and receives a few greetings through the generated endpoints; exit 0 if all arrive.
#include "hello.flatlane.hpp"

#include <cstdio>
#include <string>
#include <unistd.h>

int main() {
  flatlane::EndpointOptions o;
  o.name = "consumer-test." + std::to_string(::getpid());
  hello::Hello::greetings::Publisher pub(o);
  hello::Hello::greetings::Subscriber sub(o);
  for (uint32_t i = 0; i < 1000; ++i) {
    auto sent = pub.send([&](flatbuffers::FlatBufferBuilder& b) {
      return hello::CreateGreeting(b, b.CreateString("hello " + std::to_string(i)), i);
    });
    if (!sent) return 1;
    auto m = sub.receive(std::chrono::seconds(1));
    if (!m || (*m)->count() != i || (*m)->text()->str() != "hello " + std::to_string(i)) return 2;
  }
  std::printf("consumer: 1000 greetings through an installed Flatlane\n");
  return 0;
}
