#ifndef JOULE_TESTS_REFERENCE_TEXT_H_
#define JOULE_TESTS_REFERENCE_TEXT_H_

namespace joule::testing {

// llama2.c's greedy output for stories260K from the empty prompt with 256
// positions, as published in ../shared/models/README.md.
inline constexpr char kStories260KGreedy[] =
    "Once upon a time, there was a little girl named Lily. She loved to play "
    "outside in the park. One day, she saw a big, red ball. She wanted to play "
    "with it, but it was too high.\n"
    "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't "
    "know what to do. She said, \"I want to play with your ball, but I can't "
    "find it.\"\n"
    "Lily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I "
    "didn't know what to do.\"\n"
    "Lily didn't want to help her mom, so she said, \"I'm sorry, mom. I didn't "
    "know what to do.\" Her mom said, \"Don't worry, Lily. We can help you.";

}  // namespace joule::testing

#endif  // JOULE_TESTS_REFERENCE_TEXT_H_
