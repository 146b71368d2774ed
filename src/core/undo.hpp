// Steps that are not objects go on an UndoStack: run in reverse on destruction unless committed.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace forker {

class UndoStack {
 public:
  UndoStack() = default;
  UndoStack(const UndoStack&) = delete;
  UndoStack& operator=(const UndoStack&) = delete;
  ~UndoStack() { run(); }

  void push(std::string name, std::function<void()> step) {
    steps_.emplace_back(std::move(name), std::move(step));
  }
  void commit() { steps_.clear(); }
  void run() {
    while (!steps_.empty()) {
      auto step = std::move(steps_.back());
      steps_.pop_back();
      step.second();
    }
  }

 private:
  std::vector<std::pair<std::string, std::function<void()>>> steps_;
};

}  // namespace forker
